"""Tenants behind the gateway, with real Kafka and real clients: each sees a private cluster."""

from __future__ import annotations

import asyncio
import functools
import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)
from kafka.protocol.admin import DescribeAclsRequest
from kafka.protocol.consumer import FetchRequest
from kafka.protocol.metadata import MetadataRequest, MetadataResponse
from kafka.protocol.sasl import SaslHandshakeRequest, SaslHandshakeResponse

from streamplane.gateway import GatewayConfig, UpstreamCredentials
from streamplane.gateway.protocol import ErrorCode, frame, read_frame
from streamplane.gateway.upstream import (
    SaltedPasswords,
    UpstreamAuthError,
    UpstreamConnection,
    parse_address,
)
from streamplane.kafka import ClusterAdmin
from streamplane.mothership.gateway_keys import StoreKeyVerifier
from streamplane.mothership.store import (
    ClusterType,
    LogicalClusterStatus,
    PhysicalClusterKind,
    Store,
)
from streamplane.testing import wait_for
from streamplane.versions import DEFAULT_KAFKA_VERSION

from .conftest import (
    RunningGateway,
    SharedCluster,
    Tenant,
    TenantFactory,
    deadline_loop,
    running_gateway,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]


# ---- client helpers -----------------------------------------------------------------------


def create_topics(tenant: Tenant, *names: str, partitions: int = 2) -> None:
    admin = AdminClient(tenant.confluent())
    futures = admin.create_topics([NewTopic(n, partitions, 1) for n in names],
                                  operation_timeout=15, request_timeout=20)
    for future in futures.values():
        future.result(30)
    wait_for(lambda: set(names) <= set(admin.list_topics(timeout=5).topics), 20,
             f"topics {names} to be visible")


def produce(config: dict[str, Any], topic: str, values: list[str], **extra: Any) -> None:
    """Idempotent, acks=all; fails the test on any delivery error."""
    producer = Producer({**config, "acks": "all", "enable.idempotence": True,
                         "message.timeout.ms": 30000, **extra})
    errors: list[KafkaError] = []

    def delivered(err: KafkaError | None, _msg: Any) -> None:
        if err is not None:
            errors.append(err)

    for value in values:
        producer.produce(topic, value=value.encode(), on_delivery=delivered)
    assert producer.flush(40) == 0, "messages still in flight after 40 s"
    assert errors == []


def consume(config: dict[str, Any], topic: str, group: str, expect: int,
            timeout: float = 60.0) -> list[str]:
    """Read ``expect`` values in ``group`` from the earliest offset, commit, close."""
    consumer = Consumer({**config, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    values: list[str] = []
    try:
        consumer.subscribe([topic])
        for _ in deadline_loop(timeout):
            if len(values) >= expect:
                break
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, f"consumer error: {msg.error()}"
            values.append(msg.value().decode())
        assert len(values) == expect, f"read {len(values)} of {expect} within {timeout} s"
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return values


def committed(config: dict[str, Any], topic: str, group: str, partitions: int) -> int:
    consumer = Consumer({**config, "group.id": group, "enable.auto.commit": False})
    try:
        offsets = consumer.committed([TopicPartition(topic, p) for p in range(partitions)],
                                     timeout=15)
        return sum(tp.offset for tp in offsets if tp.offset >= 0)
    finally:
        consumer.close()


def kafka_error(call: Any) -> KafkaError:
    with pytest.raises(KafkaException) as info:
        call()
    err: KafkaError = info.value.args[0]
    return err


async def raw_connection(tenant: Tenant) -> UpstreamConnection:
    """A bare Kafka connection to the gateway, logged in with SCRAM-SHA-512."""
    return await UpstreamConnection.login(
        parse_address(tenant.bootstrap),
        UpstreamCredentials(username=tenant.key, password=tenant.secret), timeout=15,
        salted=SaltedPasswords())


# ---- isolation ---------------------------------------------------------------------------


def test_two_tenants_share_names_but_not_data(
    new_tenant: TenantFactory, gateway: RunningGateway, super_admin: ClusterAdmin,
) -> None:
    a, b = new_tenant(), new_tenant()
    for tenant in (a, b):
        create_topics(tenant, "orders")
    produce(a.confluent("SCRAM-SHA-512"), "orders", [f"a{i}" for i in range(10)])
    produce(b.confluent("PLAIN"), "orders", [f"b{i}" for i in range(4)])

    assert sorted(consume(a.confluent(), "orders", "app", 10)) == sorted(f"a{i}" for i in range(10))
    assert sorted(consume(b.confluent("SCRAM-SHA-512"), "orders", "app", 4)) == \
        sorted(f"b{i}" for i in range(4))
    assert committed(a.confluent(), "orders", "app", 2) == 10
    assert committed(b.confluent(), "orders", "app", 2) == 4

    for tenant in (a, b):
        admin = AdminClient(tenant.confluent())
        metadata = admin.list_topics(timeout=10)
        assert set(metadata.topics) == {"orders"}
        assert metadata.cluster_id == tenant.cluster_id
        assert {(br.host, br.port) for br in metadata.brokers.values()} == {
            ("127.0.0.1", port) for port in gateway.broker_ports().values()}
        groups = admin.list_consumer_groups(request_timeout=10).result(15)
        assert [g.group_id for g in groups.valid] == ["app"]
        described = admin.describe_consumer_groups(["app"], request_timeout=10)["app"].result(15)
        assert described.group_id == "app"
        cluster = admin.describe_cluster(request_timeout=10).result(15)
        assert cluster.cluster_id == tenant.cluster_id

    physical = {t.name for t in super_admin.list_topics()}
    assert {a.physical("orders"), b.physical("orders")} <= physical


def test_kafka_python_clients_see_only_their_tenant(new_tenant: TenantFactory) -> None:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
    from kafka.admin import NewTopic as KpNewTopic

    a, b = new_tenant(), new_tenant()
    for tenant, count in ((a, 3), (b, 5)):
        admin = KafkaAdminClient(**tenant.kafka_python("SCRAM-SHA-512"))
        try:
            admin.create_topics([KpNewTopic("events", 1, 1)])
            wait_for(lambda: "events" in admin.list_topics(), 20, "topic events")  # noqa: B023
            producer = KafkaProducer(**tenant.kafka_python(), acks="all", enable_idempotence=True)
            for i in range(count):
                producer.send("events", f"{tenant.key}-{i}".encode())
            producer.flush(30)
            producer.close()
            consumer = KafkaConsumer("events", **tenant.kafka_python("SCRAM-SHA-512"),
                                     group_id="readers", auto_offset_reset="earliest",
                                     enable_auto_commit=False, consumer_timeout_ms=20000)
            values = []
            for msg in consumer:
                values.append(msg.value.decode())
                if len(values) == count:
                    break
            consumer.commit()
            consumer.close()
            assert values == [f"{tenant.key}-{i}" for i in range(count)]
            assert admin.list_topics() == ["events"]
            assert [g["group_id"] for g in admin.list_groups()] == ["readers"]
            offsets = admin.list_group_offsets("readers")["readers"]
            assert {tp.topic: om.offset for tp, om in offsets.items()} == {"events": count}
        finally:
            admin.close()


def test_aiokafka_round_trip(new_tenant: TenantFactory) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin import NewTopic as AioNewTopic

    tenant = new_tenant()
    config = tenant.kafka_python("SCRAM-SHA-512")

    async def scenario() -> tuple[list[str], list[str], dict[str, int]]:
        admin = AIOKafkaAdminClient(**config)
        await admin.start()
        try:
            await admin.create_topics([AioNewTopic("aio", 1, 1)])
            producer = AIOKafkaProducer(**config, acks="all", enable_idempotence=True)
            await producer.start()
            try:
                for i in range(5):
                    await producer.send_and_wait("aio", f"m{i}".encode())
            finally:
                await producer.stop()
            consumer = AIOKafkaConsumer("aio", **config, group_id="aio-readers",
                                        auto_offset_reset="earliest", enable_auto_commit=False)
            await consumer.start()
            values: list[str] = []
            try:
                end = time.monotonic() + 40
                while len(values) < 5 and time.monotonic() < end:
                    batch = await consumer.getmany(timeout_ms=1000)
                    values += [m.value.decode() for msgs in batch.values() for m in msgs]
                await consumer.commit()
            finally:
                await consumer.stop()
            offsets = await admin.list_consumer_group_offsets("aio-readers")
            return values, await admin.list_topics(), {tp.topic: om.offset for tp, om in offsets.items()}
        finally:
            await admin.close()

    values, topics, offsets = asyncio.run(asyncio.wait_for(scenario(), 120))
    assert values == [f"m{i}" for i in range(5)]
    assert topics == ["aio"]
    assert offsets == {"aio": 5}


def test_other_tenants_topics_stay_out_of_reach(new_tenant: TenantFactory) -> None:
    a, b = new_tenant(), new_tenant()
    create_topics(a, "secret", partitions=1)
    produce(a.confluent(), "secret", ["classified"])
    create_topics(b, "mine", partitions=1)

    b_admin = AdminClient(b.confluent())
    assert set(b_admin.list_topics(timeout=10).topics) == {"mine"}
    # A's physical name, asked for by B, is B's own (nonexistent) topic
    foreign = a.physical("secret")
    asked = b_admin.list_topics(topic=foreign, timeout=10).topics[foreign]
    assert asked.error is not None and asked.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    consumer = Consumer({**b.confluent(), "group.id": "thief", "auto.offset.reset": "earliest"})
    try:
        consumer.subscribe([foreign])
        errors: list[Any] = []
        data: list[Any] = []
        for _ in deadline_loop(10):
            msg = consumer.poll(0.5)
            if msg is not None:
                (errors if msg.error() else data).append(msg)
            if errors:
                break
        assert data == []
        assert [e.error().code() for e in errors] == [KafkaError.UNKNOWN_TOPIC_OR_PART]
    finally:
        consumer.close()

    async def probe_by_id() -> tuple[Any, Any, Any]:
        mine = await raw_connection(a)
        try:
            described = await mine.request(MetadataRequest[12](
                topics=[MetadataRequest.MetadataRequestTopic(name="secret")],
                allow_auto_topic_creation=False, include_topic_authorized_operations=False), 12)
        finally:
            await mine.close()
        topic_id = described.topics[0].topic_id
        theirs = await raw_connection(b)
        try:
            by_id = await theirs.request(MetadataRequest[12](
                topics=[MetadataRequest.MetadataRequestTopic(topic_id=topic_id)],
                allow_auto_topic_creation=False, include_topic_authorized_operations=False), 12)
            fetched = await theirs.request(FetchRequest[13](
                replica_id=-1, max_wait_ms=100, min_bytes=1, max_bytes=1 << 20,
                isolation_level=0, session_id=0, session_epoch=-1,
                topics=[FetchRequest.FetchTopic(topic_id=topic_id, partitions=[
                    FetchRequest.FetchTopic.FetchPartition(
                        partition=0, current_leader_epoch=-1, fetch_offset=0,
                        last_fetched_epoch=-1, log_start_offset=-1,
                        partition_max_bytes=1 << 20)])],
                forgotten_topics_data=[], rack_id=""), 13)
        finally:
            await theirs.close()
        return topic_id, by_id, fetched

    topic_id, by_id, fetched = asyncio.run(probe_by_id())
    assert topic_id is not None
    assert [(t.topic_id, t.name, t.error_code) for t in by_id.topics] == [
        (topic_id, None, ErrorCode.UNKNOWN_TOPIC_ID)]
    [response] = fetched.responses
    assert response.topic_id == topic_id
    assert [(p.error_code, bool(p.records)) for p in response.partitions] == [
        (ErrorCode.UNKNOWN_TOPIC_ID, False)]


def test_transactions_with_the_same_id_do_not_fence_each_other(new_tenant: TenantFactory) -> None:
    a, b = new_tenant(), new_tenant()
    producers = []
    for tenant in (a, b):
        create_topics(tenant, "in", "out", partitions=1)
        produce(tenant.confluent(), "in", [f"{tenant.key}-{i}" for i in range(3)])
        producer = Producer({**tenant.confluent(), "transactional.id": "etl"})
        producer.init_transactions(30)
        producers.append(producer)
    # both tenants now hold transactional id "etl": unprefixed, b's init would fence a
    for tenant, producer in zip((a, b), producers, strict=True):
        consumer = Consumer({**tenant.confluent(), "group.id": "etl-group",
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
        consumer.subscribe(["in"])
        seen: list[Any] = []
        for _ in deadline_loop(40):
            if len(seen) == 3:
                break
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                seen.append(msg)
        assert len(seen) == 3
        producer.begin_transaction()
        for msg in seen:
            producer.produce("out", value=msg.value().upper())
        producer.send_offsets_to_transaction(
            [TopicPartition("in", 0, seen[-1].offset() + 1)], consumer.consumer_group_metadata(), 30)
        producer.commit_transaction(30)
        consumer.close()

    for tenant in (a, b):
        values = consume({**tenant.confluent(), "isolation.level": "read_committed"},
                         "out", "checker", 3)
        assert sorted(values) == sorted(f"{tenant.key}-{i}".upper() for i in range(3))
        assert committed(tenant.confluent(), "in", "etl-group", 1) == 3
        _check_transaction_admin(tenant)


def _check_transaction_admin(tenant: Tenant) -> None:
    """ListTransactions, DescribeTransactions, DescribeProducers, DeleteRecords and
    DeleteGroups, through kafka-python's admin client: each tenant sees its own."""
    from kafka import KafkaAdminClient
    from kafka import TopicPartition as KpPartition

    admin = KafkaAdminClient(**tenant.kafka_python())
    try:
        listed = [t.transactional_id for ts in admin.list_transactions().values() for t in ts]
        assert listed == ["etl"]
        assert admin.describe_transactions(["etl"])["etl"].state.value == "CompleteCommit"
        out = KpPartition("out", 0)
        assert admin.describe_producers([out])[out].active_producers
        assert admin.delete_records({out: 1})[out]["low_watermark"] == 1
        assert admin.delete_groups(["checker"]) == {"checker": "OK"}
        assert sorted(g["group_id"] for g in admin.list_groups()) == ["etl-group"]
    finally:
        admin.close()


def test_topic_administration(new_tenant: TenantFactory, super_admin: ClusterAdmin) -> None:
    tenant = new_tenant()
    create_topics(tenant, "admin-me", partitions=1)
    admin = AdminClient(tenant.confluent())

    admin.create_partitions([NewPartitions("admin-me", 3)], request_timeout=15)["admin-me"].result(20)
    wait_for(lambda: len(admin.list_topics(timeout=5).topics["admin-me"].partitions) == 3, 20,
             "3 partitions")
    resource = ConfigResource(ResourceType.TOPIC, "admin-me", incremental_configs=[
        ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([resource])[resource].result(20)

    def retention() -> str:
        described = admin.describe_configs([ConfigResource(ResourceType.TOPIC, "admin-me")])
        return str(next(iter(described.values())).result(20)["retention.ms"].value)

    # the broker applies the change when it reads it back from the metadata log
    wait_for(lambda: retention() == "3600000", 20, "the new retention.ms to show")
    assert super_admin.describe_topic(tenant.physical("admin-me")).overrides["retention.ms"] == "3600000"

    # nothing outside the tenant: brokers' configs are not its business
    broker = ConfigResource(ResourceType.BROKER, "1")
    err = kafka_error(lambda: admin.describe_configs([broker])[broker].result(20))
    assert err.code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED

    create = admin.create_topics([NewTopic("admin-me", 1, 1)], request_timeout=15)["admin-me"]
    err = kafka_error(lambda: create.result(20))
    assert err.code() == KafkaError.TOPIC_ALREADY_EXISTS
    assert tenant.prefix not in err.str(), "error messages show the tenant its own names"

    admin.delete_topics(["admin-me"], operation_timeout=15)["admin-me"].result(20)
    wait_for(lambda: "admin-me" not in admin.list_topics(timeout=5).topics, 20, "topic deleted")
    assert tenant.physical("admin-me") not in {t.name for t in super_admin.list_topics()}


def test_cluster_apis_are_refused_not_forwarded(new_tenant: TenantFactory) -> None:
    tenant = new_tenant()

    async def ask() -> tuple[dict[int, tuple[int, int]], Any]:
        conn = await raw_connection(tenant)
        try:
            acls = await conn.request(DescribeAclsRequest[3](
                resource_type_filter=1, resource_name_filter=None, pattern_type_filter=1,
                principal_filter=None, host_filter=None, operation=1, permission_type=1), 3)
            return dict(conn.versions), acls
        finally:
            await conn.close()

    advertised, acls = asyncio.run(ask())
    assert acls.error_code == ErrorCode.CLUSTER_AUTHORIZATION_FAILED
    for key in (29, 30, 31, 50, 51, 55, 57):  # ACLs, SCRAM users, quorum, features
        assert key not in advertised
    assert {0, 1, 3, 10, 11, 19, 22} <= set(advertised)


# ---- keys --------------------------------------------------------------------------------


def test_revoked_keys_are_cut_off_within_seconds(
    new_tenant: TenantFactory, gateway: RunningGateway, verifier: Any,
) -> None:
    a, b = new_tenant(), new_tenant()
    create_topics(a, "t", partitions=1)
    create_topics(b, "t", partitions=1)
    live_a = Producer({**a.confluent(), "acks": "all", "message.timeout.ms": 10000})
    live_a.produce("t", b"before")
    assert live_a.flush(20) == 0
    assert gateway.connections(a.key) >= 1

    # revoked in the store: the gateway's re-check finds out
    verifier.remove(a.key)
    started = time.monotonic()
    wait_for(lambda: gateway.connections(a.key) == 0, 5, "a's connections to be closed")
    wait_for(lambda: _refused(a), 5, "new logins with a's key to be refused")
    assert time.monotonic() - started < 5
    err = kafka_error(lambda: AdminClient(a.confluent()).list_topics(timeout=4))
    assert err.code() in (KafkaError._AUTHENTICATION, KafkaError._TRANSPORT, KafkaError._TIMED_OUT)
    outcome: list[KafkaError | None] = []
    live_a.produce("t", b"after", on_delivery=lambda err, _msg: outcome.append(err))
    live_a.flush(15)
    assert outcome and outcome[0] is not None, "the revoked key's open producer got through"

    # revoked at the gateway, before the store says anything: immediate, also for SCRAM
    live_b = Producer({**b.confluent("SCRAM-SHA-512"), "acks": "all"})
    live_b.produce("t", b"before")
    assert live_b.flush(20) == 0
    assert gateway.revoke(b.key) >= 1
    assert gateway.connections(b.key) == 0
    assert _refused(b)
    for mechanism in ("PLAIN", "SCRAM-SHA-512"):
        err = kafka_error(lambda m=mechanism: AdminClient(b.confluent(m)).list_topics(timeout=4))
        assert err.code() in (KafkaError._AUTHENTICATION, KafkaError._TRANSPORT,
                              KafkaError._TIMED_OUT)


def test_wrong_secrets_are_refused(new_tenant: TenantFactory) -> None:
    tenant = new_tenant()
    for mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        errors: list[KafkaError] = []
        admin = AdminClient({**tenant.confluent(mechanism), "sasl.password": "not-the-secret",
                             "error_cb": errors.append})
        with pytest.raises(KafkaException):
            admin.list_topics(timeout=4)
        admin.poll(0)
        assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), (mechanism, errors)
    unknown = AdminClient({**tenant.confluent(), "sasl.username": f"key-{uuid.uuid4().hex[:6]}"})
    with pytest.raises(KafkaException):
        unknown.list_topics(timeout=4)
    assert AdminClient(tenant.confluent("SCRAM-SHA-256")).list_topics(timeout=10).topics == {}


# ---- running it as the mothership would ---------------------------------------------------


def test_keys_from_the_mothership_store(
    cluster: SharedCluster, super_admin: ClusterAdmin, tmp_path: Path,
) -> None:
    store = Store.in_data_dir(tmp_path / "mothership")
    store.migrate()
    store.satellites.upsert("local", zone="zone-a", capacity={})
    shared = store.physical_clusters.create(cluster.psc.model_copy(update={"satellite": "local"}),
                                            kind=PhysicalClusterKind.SHARED)
    lc = store.logical_clusters.create(name="shop", type=ClusterType.BASIC,
                                       kafka_version=DEFAULT_KAFKA_VERSION)
    store.logical_clusters.set_status(lc.id, LogicalClusterStatus.RUNNING,
                                      physical_cluster_id=shared.id)
    issued = store.api_keys.create(lc.id)
    # what the mothership does for a basic/standard cluster: one Kafka user for the tenant,
    # confined to its prefix; the API key itself is a gateway credential only
    principal = store.tenant_principals.ensure(lc.id)
    tenant_ = Tenant(lc.id, issued.api_key.id, issued.secret.get_secret_value(), "")
    super_admin.upsert_scram_user(principal.username, principal.password.get_secret_value())
    super_admin.grant_client_access(principal.username, tenant_.prefix)
    config = GatewayConfig(upstream_bootstrap=(cluster.bootstrap,), recheck_interval_s=1.0)
    try:
        assert tenant_.key not in super_admin.scram_users()
        with running_gateway(config, StoreKeyVerifier(store, shared.id)) as gw:
            tenant = Tenant(lc.id, tenant_.key, tenant_.secret, gw.bootstrap)
            wait_for(lambda: AdminClient(tenant.confluent()).list_topics(timeout=5) is not None,
                     30, "the key to log in through the gateway")
            create_topics(tenant, "orders", partitions=1)
            produce(tenant.confluent(), "orders", ["one", "two"])
            assert consume(tenant.confluent(), "orders", "shop-app", 2) == ["one", "two"]
            assert tenant.physical("orders") in {t.name for t in super_admin.list_topics()}
            # the store keeps the key's SCRAM verifiers: SCRAM logins work, with the secret only
            for mechanism in ("SCRAM-SHA-512", "SCRAM-SHA-256"):
                produce(tenant.confluent(mechanism), "orders", [mechanism])
            wrong = Tenant(lc.id, tenant_.key, tenant_.secret + "x", gw.bootstrap)
            err = kafka_error(lambda: AdminClient(wrong.confluent("SCRAM-SHA-512"))
                              .list_topics(timeout=4))
            assert err.code() in (KafkaError._AUTHENTICATION, KafkaError._TRANSPORT,
                                  KafkaError._TIMED_OUT)

            live = Producer({**tenant.confluent("SCRAM-SHA-512"), "acks": "all"})
            live.produce("orders", b"three")
            assert live.flush(20) == 0
            store.api_keys.revoke(tenant.key)
            wait_for(lambda: gw.connections(tenant.key) == 0, 5, "the revoked key's connections to close")
            for mechanism in ("PLAIN", "SCRAM-SHA-512"):
                refused = AdminClient(tenant.confluent(mechanism))
                err = kafka_error(functools.partial(refused.list_topics, timeout=4))
                assert err.code() in (KafkaError._AUTHENTICATION, KafkaError._TRANSPORT,
                                      KafkaError._TIMED_OUT)
    finally:
        for topic in super_admin.list_topics(prefix=tenant_.prefix):
            super_admin.delete_topic(topic.name)
        super_admin.revoke_client_access(principal.username)
        super_admin.delete_scram_user(principal.username)
        store.close()


def test_gateway_process_serves_keys_from_a_file(
    new_tenant: TenantFactory, cluster: SharedCluster, tmp_path: Path,
) -> None:
    tenant = new_tenant()
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": [
        {"key": tenant.key, "secret": tenant.secret, "cluster_id": tenant.cluster_id}]}))
    state = tmp_path / "gateway.json"
    log = tmp_path / "gateway.log"
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamplane.gateway", "--upstream", cluster.bootstrap,
             "--keys", str(keys), "--state-file", str(state)],
            stdout=subprocess.DEVNULL, stderr=log_file)
    try:
        bootstrap = wait_for(lambda: state.exists() and json.loads(state.read_text())["bootstrap"],
                             30, "the gateway process to record its port")
        mine = Tenant(tenant.cluster_id, tenant.key, tenant.secret, bootstrap)
        create_topics(mine, "from-file", partitions=1)
        produce(mine.confluent("SCRAM-SHA-512"), "from-file", ["x"])
        assert consume(mine.confluent(), "from-file", "file-app", 1) == ["x"]
        wait_for(lambda: set(json.loads(state.read_text())["brokers"]) == {"1"}, 10,
                 "the broker listener's port to be recorded")

        keys.write_text(json.dumps({"keys": []}))  # deleting a key from the file revokes it
        err = wait_for(lambda: _login_error(mine), 10, "the removed key to be refused")
        assert err.code() in (KafkaError._AUTHENTICATION, KafkaError._TRANSPORT,
                              KafkaError._TIMED_OUT)
    finally:
        proc.terminate()
        code = proc.wait(30)
    assert code == 0, log.read_text()[-2000:]
    assert not state.exists()


def _refused(tenant: Tenant) -> bool:
    """Whether the gateway refuses the tenant's key at login (answered at once)."""
    async def attempt() -> bool:
        try:
            conn = await raw_connection(tenant)
        except UpstreamAuthError:
            return True
        await conn.close()
        return False

    return asyncio.run(attempt())


def _login_error(tenant: Tenant) -> KafkaError | None:
    try:
        AdminClient(tenant.confluent()).list_topics(timeout=3)
    except KafkaException as exc:
        err: KafkaError = exc.args[0]
        return err
    return None


JAVA_LIBS = Path.home() / ".cache" / "streamplane" / "kafka" / DEFAULT_KAFKA_VERSION / "libs"


@pytest.mark.skipif(shutil.which("java") is None, reason="no java on this machine")
def test_java_client(new_tenant: TenantFactory, tmp_path: Path) -> None:
    """Kafka's own console tools (the Java client: topic ids in Fetch, DescribeTopicPartitions)."""
    tenant = new_tenant()
    props = tmp_path / "client.properties"
    props.write_text(
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{tenant.key}" password="{tenant.secret}";\n')

    def tool(main: str, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            ["java", "-Xmx128m", "-cp", f"{JAVA_LIBS}/*", main, "--bootstrap-server",
             tenant.bootstrap, "--command-config", str(props), *args],
            input=stdin, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    tool("org.apache.kafka.tools.TopicCommand", "--create", "--topic", "jvm", "--partitions", "2")
    assert "jvm" in tool("org.apache.kafka.tools.TopicCommand", "--list").split()
    tool("org.apache.kafka.tools.ConsoleProducer", "--topic", "jvm", stdin="j1\nj2\nj3\n")
    out = tool("org.apache.kafka.tools.consumer.ConsoleConsumer", "--topic", "jvm",
               "--from-beginning", "--max-messages", "3", "--group", "jvm-readers",
               "--timeout-ms", "60000")
    assert sorted(out.split()) == ["j1", "j2", "j3"]
    assert committed(tenant.confluent(), "jvm", "jvm-readers", 2) == 3


def test_legacy_sasl_handshake_v0_with_bare_tokens(new_tenant: TenantFactory) -> None:
    """SaslHandshake v0 is followed by SASL tokens without Kafka headers (pre-KIP-152)."""
    tenant = new_tenant()

    async def scenario() -> Any:
        reader, writer = await asyncio.open_connection(*parse_address(tenant.bootstrap))
        try:
            handshake = SaslHandshakeRequest[0](mechanism="PLAIN")
            handshake.with_header(correlation_id=1, client_id="legacy")
            writer.write(handshake.encode(header=True, framed=True))
            answer = SaslHandshakeResponse.decode(await read_frame(reader), version=0, header=True)
            assert answer.error_code == 0 and "PLAIN" in answer.mechanisms
            writer.write(frame(f"\0{tenant.key}\0{tenant.secret}".encode()))
            assert await read_frame(reader) == b""
            metadata = MetadataRequest[4](topics=None, allow_auto_topic_creation=False)
            metadata.with_header(correlation_id=2, client_id="legacy")
            writer.write(metadata.encode(header=True, framed=True))
            return MetadataResponse.decode(await read_frame(reader), version=4, header=True)
        finally:
            writer.close()

    metadata = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert metadata.header.correlation_id == 2
    assert metadata.cluster_id == tenant.cluster_id
    assert metadata.topics == []
