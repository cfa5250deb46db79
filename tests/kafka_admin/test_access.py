"""SCRAM users and client ACLs, checked with real producers, consumers and admin clients."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from streamplane.kafka import (
    CLIENT_OPERATIONS,
    AclEntry,
    AuthorizationError,
    ClusterAdmin,
    InvalidAclError,
    InvalidUserError,
    UserNotFoundError,
)
from streamplane.testing import wait_for

from .conftest import (
    ApiKey,
    SoloCluster,
    consume_and_commit,
    consumer_error,
    produce,
    produce_transaction,
    unique,
    wait_until_login,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]


def _kafka_error(call: Any) -> KafkaError:
    with pytest.raises(KafkaException) as info:
        call()
    err: KafkaError = info.value.args[0]
    return err


def test_scram_user_can_log_in_and_change_password(
    solo: SoloCluster, admin: ClusterAdmin, api_key: ApiKey,
) -> None:
    assert api_key.name in admin.scram_users()
    wait_until_login(solo, api_key)

    admin.upsert_scram_user(api_key.name, "a-brand-new-password")
    wait_until_login(solo, ApiKey(api_key.name, "a-brand-new-password"))
    assert api_key.name in admin.scram_users()

    with pytest.raises(InvalidUserError, match="must be 1-128"):
        admin.upsert_scram_user("no spaces please", "password-123456")
    with pytest.raises(InvalidUserError, match="password is empty"):
        admin.upsert_scram_user(api_key.name, "")
    with pytest.raises(UserNotFoundError, match="no SCRAM user named 'never-created'"):
        admin.delete_scram_user("never-created")


def test_grants_are_exactly_the_client_set_and_idempotent(admin: ClusterAdmin, api_key: ApiKey) -> None:
    granted = admin.grant_client_access(api_key.name, None)
    assert admin.grant_client_access(api_key.name, None) == granted
    found = admin.acls_for(api_key.name)
    assert sorted(found, key=str) == sorted(granted, key=str)
    assert len(found) == sum(len(ops) for ops in CLIENT_OPERATIONS.values())
    assert {(e.resource_type, e.resource_name, e.pattern_type) for e in found} == {
        ("TOPIC", "*", "LITERAL"), ("GROUP", "*", "LITERAL"), ("TRANSACTIONAL_ID", "*", "LITERAL")}
    assert all(e.permission == "ALLOW" and e.principal == f"User:{api_key.name}" for e in found)
    assert "CLUSTER" not in {e.resource_type for e in found}

    admin.grant_client_access(api_key.name, "lkc-z_")
    assert len(admin.acls_for(api_key.name)) == 2 * len(found)
    removed = admin.revoke_client_access(api_key.name)
    assert len(removed) == 2 * len(found)
    assert admin.acls_for(api_key.name) == []

    with pytest.raises(InvalidAclError, match="resource prefix"):
        admin.grant_client_access(api_key.name, "bad prefix*")


def test_dedicated_key_is_a_full_client_but_not_an_admin(
    solo: SoloCluster, admin: ClusterAdmin, api_key: ApiKey,
) -> None:
    admin.grant_client_access(api_key.name, None)
    wait_until_login(solo, api_key)
    conf = solo.client_config(api_key.name, api_key.password)
    topic = unique("ded-")

    with solo.admin(api_key.name, api_key.password) as mine:
        mine.create_topic(topic, 2, configs={"retention.ms": "600000"})
        mine.alter_topic_configs(topic, set={"retention.ms": "900000"})
        mine.add_partitions(topic, 3)
        assert mine.describe_topic(topic).overrides == {"retention.ms": "900000"}

        assert produce(conf, topic, 20) == []
        group = unique("grp-")
        assert consume_and_commit(conf, topic, group, expect=20) == 20
        produce_transaction(conf, topic, unique("tx-"))

        raw = AdminClient(conf)
        described = raw.describe_consumer_groups([group], request_timeout=10)[group].result(15)
        assert described.group_id == group
        raw.delete_consumer_groups([group], request_timeout=10)[group].result(15)

        # nothing cluster-wide: broker configs, ACLs, SCRAM credentials
        broker = ConfigResource(ResourceType.BROKER, "1", incremental_configs=[
            ConfigEntry("log.retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)])
        err = _kafka_error(lambda: raw.incremental_alter_configs([broker])[broker].result(15))
        assert err.code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
        with pytest.raises(AuthorizationError, match="CLUSTER_AUTHORIZATION_FAILED"):
            mine.grant_client_access(api_key.name, "anything_")
        with pytest.raises(AuthorizationError, match="CLUSTER_AUTHORIZATION_FAILED"):
            mine.scram_users()
        with pytest.raises(AuthorizationError, match="CLUSTER_AUTHORIZATION_FAILED"):
            mine.acls_for(api_key.name)
        with pytest.raises(AuthorizationError, match="CLUSTER_AUTHORIZATION_FAILED"):
            mine.revoke_client_access(api_key.name)
        with pytest.raises(AuthorizationError, match="CLUSTER_AUTHORIZATION_FAILED"):
            mine.upsert_scram_user(api_key.name, "escalated-password")

        mine.delete_topic(topic)
    assert topic not in [t.name for t in admin.list_topics()]


def test_tenant_key_is_confined_to_its_prefix(
    solo: SoloCluster, admin: ClusterAdmin, api_key: ApiKey,
) -> None:
    run = unique("")
    mine_prefix, other_prefix = f"lkc-a{run}_", f"lkc-b{run}_"
    other_topic = other_prefix + "x"
    admin.create_topic(other_topic, 1)
    admin.grant_client_access(api_key.name, mine_prefix)
    wait_until_login(solo, api_key)
    conf = solo.client_config(api_key.name, api_key.password)
    topic = mine_prefix + "events"
    try:
        with solo.admin(api_key.name, api_key.password) as mine:
            mine.create_topic(topic, 2)
            mine.add_partitions(topic, 3)
            mine.alter_topic_configs(topic, set={"retention.ms": "900000"})
            assert [t.name for t in mine.list_topics()] == [topic]
            assert mine.partition_count() == 3

            with pytest.raises(AuthorizationError, match="TOPIC_AUTHORIZATION_FAILED"):
                mine.create_topic(other_prefix + "y", 1)
            with pytest.raises(AuthorizationError, match="TOPIC_AUTHORIZATION_FAILED"):
                mine.describe_topic(other_topic)
            with pytest.raises(AuthorizationError, match="TOPIC_AUTHORIZATION_FAILED"):
                mine.delete_topic(other_topic)

        assert produce(conf, topic, 10) == []
        assert consume_and_commit(conf, topic, mine_prefix + "group", expect=10) == 10
        produce_transaction(conf, topic, mine_prefix + "tx")

        errors = produce(conf, other_topic, 1, timeout=15)
        assert [e.code() for e in errors] == [KafkaError.TOPIC_AUTHORIZATION_FAILED]
        err = consumer_error(conf, topic, other_prefix + "group")
        assert err.code() == KafkaError.GROUP_AUTHORIZATION_FAILED
        raw = AdminClient(conf)
        raw.delete_consumer_groups([mine_prefix + "group"], request_timeout=10)[
            mine_prefix + "group"].result(15)
        err = _kafka_error(lambda: raw.describe_consumer_groups(
            [other_prefix + "group"], request_timeout=10)[other_prefix + "group"].result(15))
        assert err.code() == KafkaError.GROUP_AUTHORIZATION_FAILED
        err = _kafka_error(lambda: produce_transaction(conf, topic, other_prefix + "tx"))
        assert err.code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    finally:
        admin.delete_topic(other_topic)
        if topic in [t.name for t in admin.list_topics()]:
            admin.delete_topic(topic)


def test_deleted_and_revoked_key_loses_access(
    solo: SoloCluster, admin: ClusterAdmin, api_key: ApiKey,
) -> None:
    admin.grant_client_access(api_key.name, None)
    wait_until_login(solo, api_key)
    conf = solo.client_config(api_key.name, api_key.password)
    topic = unique("rev-")
    admin.create_topic(topic, 1)
    # a connection that outlives the revocation
    survivor = Producer({**conf, "acks": "all", "enable.idempotence": True,
                         "message.timeout.ms": 10000})
    try:
        survivor.produce(topic, b"before")
        assert survivor.flush(15) == 0

        admin.delete_scram_user(api_key.name)
        removed = admin.revoke_client_access(api_key.name)
        assert len(removed) == sum(len(ops) for ops in CLIENT_OPERATIONS.values())
        assert api_key.name not in admin.scram_users()
        assert admin.acls_for(api_key.name) == []

        started = time.monotonic()
        wait_for(lambda: _login_refused(conf), 5, "a new login as the deleted user to fail")
        assert time.monotonic() - started < 5

        failures: list[KafkaError] = []
        survivor.produce(topic, b"after", on_delivery=lambda e, _m: failures.append(e))
        assert survivor.flush(15) == 0
        assert [f.code() for f in failures] == [KafkaError.TOPIC_AUTHORIZATION_FAILED]
    finally:
        admin.delete_topic(topic)


def _login_refused(conf: dict[str, Any]) -> bool:
    """Does a brand-new connection with ``conf`` fail SASL authentication?"""
    errors: list[KafkaError] = []
    probe = AdminClient({**conf, "error_cb": errors.append})
    with contextlib.suppress(KafkaException):
        probe.list_topics(timeout=1)
    probe.poll(0)
    return any(e.code() == KafkaError._AUTHENTICATION for e in errors)


def test_acl_entries_are_plain_data() -> None:
    entry = AclEntry(principal="User:a", resource_type="TOPIC", resource_name="*",
                     pattern_type="LITERAL", operation="READ")
    assert entry.model_dump() == {
        "principal": "User:a", "resource_type": "TOPIC", "resource_name": "*",
        "pattern_type": "LITERAL", "operation": "READ", "permission": "ALLOW", "host": "*"}
