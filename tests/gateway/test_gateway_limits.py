"""A tenant's topic, partition and connection limits, enforced by the gateway, seen by real clients."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic
from kafka.protocol.metadata import MetadataRequest

from streamplane.capacity import TenantLimits, tenant_limits
from streamplane.gateway import InMemoryKeyVerifier, TenantIdentity, UpstreamCredentials
from streamplane.gateway.upstream import (
    SaltedPasswords,
    UpstreamAuthError,
    UpstreamConnection,
    parse_address,
)
from streamplane.kafka import ClusterAdmin
from streamplane.testing import wait_for

from .conftest import RunningGateway, Tenant, TenantFactory

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]


def limit_tenant(verifier: InMemoryKeyVerifier, tenant: Tenant, **limits: int) -> TenantLimits:
    """Give ``tenant`` the basic limits with ``limits`` changed (before it first logs in
    through the gateway, which caches identities)."""
    changed = dataclasses.replace(tenant_limits("basic"), **limits)
    verifier.add(TenantIdentity(
        key=tenant.key, cluster_id=tenant.cluster_id, prefix=tenant.prefix,
        upstream=UpstreamCredentials(username=tenant.key, password=tenant.secret),
        limits=changed), tenant.secret)
    return changed


def create_error(admin: AdminClient, topic: NewTopic) -> KafkaError | None:
    future = admin.create_topics([topic], operation_timeout=15, request_timeout=20)[topic.topic]
    try:
        future.result(30)
    except KafkaException as exc:
        err: KafkaError = exc.args[0]
        return err
    return None


def grow_error(admin: AdminClient, topic: str, total: int) -> KafkaError | None:
    future = admin.create_partitions([NewPartitions(topic, total)], operation_timeout=15,
                                     request_timeout=20)[topic]
    try:
        future.result(30)
    except KafkaException as exc:
        err: KafkaError = exc.args[0]
        return err
    return None


def physical_partitions(super_admin: ClusterAdmin, tenant: Tenant) -> dict[str, int]:
    return {t.name.removeprefix(tenant.prefix): t.partitions
            for t in super_admin.list_topics(prefix=tenant.prefix)}


def test_topic_limit_refuses_the_excess_topic(
    new_tenant: TenantFactory, verifier: InMemoryKeyVerifier, super_admin: ClusterAdmin,
) -> None:
    tenant = new_tenant()
    limit_tenant(verifier, tenant, max_topics=3)
    admin = AdminClient(tenant.confluent())
    for name in ("t1", "t2", "t3"):
        assert create_error(admin, NewTopic(name, 1, 1)) is None
    wait_for(lambda: len(physical_partitions(super_admin, tenant)) == 3, 20, "3 topics")

    err = create_error(admin, NewTopic("t4", 1, 1))
    assert err is not None and err.code() == KafkaError.POLICY_VIOLATION, err
    assert "at most 3 topics: it has 3 and this request asks for 1 more topic" in err.str()
    assert tenant.cluster_id in err.str()

    # kafka-python, several topics in one request: all refused, none created
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic as KpNewTopic
    from kafka.errors import PolicyViolationError

    kp = KafkaAdminClient(**tenant.kafka_python("SCRAM-SHA-512"))
    try:
        with pytest.raises(PolicyViolationError) as info:
            kp.create_topics([KpNewTopic("t5", 1, 1), KpNewTopic("t6", 1, 1)])
        assert "at most 3 topics: it has 3 and this request asks for 2 more topics" in str(info.value)
    finally:
        kp.close()
    assert physical_partitions(super_admin, tenant) == {"t1": 1, "t2": 1, "t3": 1}


def test_partition_limit_refuses_new_topics_and_growth(
    new_tenant: TenantFactory, verifier: InMemoryKeyVerifier, super_admin: ClusterAdmin,
) -> None:
    tenant = new_tenant()
    limit_tenant(verifier, tenant, max_partitions=6)
    admin = AdminClient(tenant.confluent())
    assert create_error(admin, NewTopic("big", 4, 1)) is None
    wait_for(lambda: physical_partitions(super_admin, tenant) == {"big": 4}, 20, "topic big")

    err = create_error(admin, NewTopic("more", 3, 1))
    assert err is not None and err.code() == KafkaError.POLICY_VIOLATION, err
    assert (f"logical cluster {tenant.cluster_id} may have at most 6 partitions: it has 4 and "
            "this request asks for 3 more partitions; nothing was created") in err.str()

    err = grow_error(admin, "big", 7)
    assert err is not None and err.code() == KafkaError.POLICY_VIOLATION, err
    assert "at most 6 partitions: it has 4 and this request asks for 3 more" in err.str()
    assert physical_partitions(super_admin, tenant) == {"big": 4}

    # up to the limit is fine
    assert grow_error(admin, "big", 5) is None
    assert create_error(admin, NewTopic("last", 1, 1)) is None
    wait_for(lambda: physical_partitions(super_admin, tenant) == {"big": 5, "last": 1}, 20,
             "topic last and a fifth partition of big")
    err = create_error(admin, NewTopic("one-too-many", 1, 1))
    assert err is not None and err.code() == KafkaError.POLICY_VIOLATION, err


async def _login(tenant: Tenant) -> UpstreamConnection:
    """A bare Kafka connection to the gateway, logged in with SCRAM-SHA-512."""
    return await UpstreamConnection.login(
        parse_address(tenant.bootstrap),
        UpstreamCredentials(username=tenant.key, password=tenant.secret), timeout=15,
        salted=SaltedPasswords())


async def _topics(conn: UpstreamConnection) -> list[str]:
    response = await conn.request(MetadataRequest[12](
        topics=None, allow_auto_topic_creation=False, include_topic_authorized_operations=False), 12)
    return sorted(t.name for t in response.topics)


def test_connection_limit_refuses_the_next_connection_only(
    new_tenant: TenantFactory, verifier: InMemoryKeyVerifier, gateway: RunningGateway,
) -> None:
    tenant, other = new_tenant(), new_tenant()
    limit_tenant(verifier, tenant, max_connections=3)
    limit_tenant(verifier, other, max_connections=3)

    async def at_the_limit() -> str:
        held = [await _login(tenant) for _ in range(3)]
        try:
            with pytest.raises(UpstreamAuthError) as info:
                await _login(tenant)
            # the first three keep working, and another tenant is not affected
            for conn in held:
                assert await _topics(conn) == []
            neighbour = await _login(other)
            await neighbour.close()
        finally:
            for conn in held:
                await conn.close()
        return str(info.value)

    message = gateway.run(at_the_limit)
    assert f"logical cluster {tenant.cluster_id} has reached its limit of 3 connections" in message
    wait_for(lambda: gateway.call(lambda: gateway.gateway.tenant_connections(tenant.cluster_id)) == 0,
             10, "the closed connections to be counted out")

    # a real client over the limit is told why; with connections free again it works
    async def hold(count: int) -> list[UpstreamConnection]:
        return [await _login(tenant) for _ in range(count)]

    held = gateway.run(lambda: hold(3))
    errors: list[KafkaError] = []
    admin = AdminClient({**tenant.confluent(), "error_cb": errors.append,
                         "logger": logging.getLogger("streamplane.rdkafka.tests")})
    try:
        with pytest.raises(KafkaException):
            admin.list_topics(timeout=5)
        admin.poll(0)
        assert any("has reached its limit of 3 connections" in e.str() for e in errors), errors
    finally:
        for conn in held:
            gateway.run(conn.close)
    wait_for(lambda: _lists(admin), 30, "the client to connect once connections are free")


def _lists(admin: Any) -> bool:
    try:
        admin.list_topics(timeout=5)
    except KafkaException:
        return False
    return True
