"""The KIP-848 consumer group protocol through the gateway: same group id, same topic name,
two tenants, and each consumer reads its own tenant's data only."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, ConsumerGroupType
from confluent_kafka.admin import AdminClient
from kafka.protocol.metadata import FindCoordinatorRequest

from streamplane.gateway import topic_regex
from streamplane.gateway.protocol import APIS, ErrorCode
from streamplane.kafka.admin import SCRAM_MECHANISM
from streamplane.kafka.settings import sasl_config

from .conftest import SharedCluster, Tenant, TenantFactory, deadline_loop
from .test_gateway_kafka import JAVA_LIBS, create_topics, produce, raw_connection

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]

HEARTBEAT, DESCRIBE = 68, 69


def consume_848(tenant: Tenant, subscription: list[str], group: str, expect: int,
                timeout: float = 60.0) -> list[str]:
    """Read ``expect`` values with ``group.protocol=consumer`` and commit them."""
    consumer = Consumer({**tenant.confluent(), "group.id": group, "group.protocol": "consumer",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    values: list[str] = []
    try:
        consumer.subscribe(subscription)
        for _ in deadline_loop(timeout):
            if len(values) >= expect:
                break
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, f"consumer error: {msg.error()}"
            values.append(msg.value().decode())
        # anything more would be another tenant's data
        for _ in deadline_loop(2):
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                values.append(msg.value().decode())
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return values


def test_consumer_group_protocol_keeps_tenants_apart(
    new_tenant: TenantFactory, cluster: SharedCluster,
) -> None:
    assert HEARTBEAT in APIS and DESCRIBE in APIS, "Kafka's message schemas were not loaded"
    a, b = new_tenant(), new_tenant()
    for tenant, count in ((a, 6), (b, 3)):
        create_topics(tenant, "orders", "orders-eu")
        produce(tenant.confluent(), "orders", [f"{tenant.key}-{i}" for i in range(count)])
        produce(tenant.confluent(), "orders-eu", [f"{tenant.key}-eu-{i}" for i in range(2)])

    for tenant, count in ((a, 6), (b, 3)):
        values = consume_848(tenant, ["orders"], "app", count)
        assert sorted(values) == sorted(f"{tenant.key}-{i}" for i in range(count))
    # a regex subscription matches the tenant's own topics only
    values = consume_848(a, ["^orders.*"], "by-regex", 8)
    assert sorted(values) == sorted([f"{a.key}-{i}" for i in range(6)]
                                    + [f"{a.key}-eu-{i}" for i in range(2)])

    # the groups are the consumer protocol's, on the physical cluster under each prefix
    su = cluster.psc.super_user
    physical = AdminClient(sasl_config(cluster.bootstrap, SCRAM_MECHANISM, su.name,
                                       su.password.get_secret_value()))
    listed = physical.list_consumer_groups(request_timeout=10).result(15)
    types = {g.group_id: g.type for g in listed.valid}
    assert listed.errors == []
    for name in (a.physical("app"), b.physical("app"), a.physical("by-regex")):
        assert types.get(name) == ConsumerGroupType.CONSUMER, (name, types)

    for tenant, count in ((a, 6), (b, 3)):
        admin = AdminClient(tenant.confluent())
        groups = admin.list_consumer_groups(request_timeout=10).result(15)
        expected = ["app", "by-regex"] if tenant is a else ["app"]
        assert sorted(g.group_id for g in groups.valid) == expected
        offsets = admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions("app")], request_timeout=10)["app"].result(15)
        assert {tp.topic for tp in offsets.topic_partitions} == {"orders"}
        assert sum(tp.offset for tp in offsets.topic_partitions if tp.offset > 0) == count


def test_consumer_group_describe_and_heartbeat_on_the_wire(new_tenant: TenantFactory) -> None:
    """ConsumerGroupHeartbeat/Describe as raw requests: names and topic ids in the tenant's
    terms, and a regex that could escape the namespace refused."""
    a, b = new_tenant(), new_tenant()
    for tenant in (a, b):
        create_topics(tenant, "events", partitions=1)
    heartbeat, describe = APIS[HEARTBEAT], APIS[DESCRIBE]

    async def scenario(tenant: Tenant) -> tuple[Any, Any, Any]:
        conn = await raw_connection(tenant)
        try:
            # as clients do: find the coordinator first (this also creates the offsets topic)
            for _ in range(40):
                found = await conn.request(FindCoordinatorRequest[4](
                    key_type=0, coordinator_keys=["wire", "sneaky"]), 4)
                if all(c.error_code == 0 for c in found.coordinators):
                    break
                await asyncio.sleep(0.5)
            member = uuid.uuid4().hex
            joined = None
            for _ in range(40):
                joined = await conn.request(heartbeat.request[1](
                    group_id="wire", member_id=member, member_epoch=0, instance_id=None,
                    rack_id=None, rebalance_timeout_ms=30000, subscribed_topic_names=["events"],
                    subscribed_topic_regex=None, server_assignor=None, topic_partitions=[]), 1)
                if joined.error_code == 0 and joined.assignment is not None:
                    break
                await asyncio.sleep(0.5)
            escape = await conn.request(heartbeat.request[1](
                group_id="sneaky", member_id=uuid.uuid4().hex, member_epoch=0, instance_id=None,
                rack_id=None, rebalance_timeout_ms=30000, subscribed_topic_names=None,
                subscribed_topic_regex=").*|(.*", server_assignor=None, topic_partitions=[]), 1)
            described = await conn.request(describe.request[1](
                group_ids=["wire", "sneaky"], include_authorized_operations=False), 1)
            return joined, escape, described
        finally:
            await conn.close()

    topic_ids = {}
    for tenant in (a, b):
        joined, escape, described = asyncio.run(asyncio.wait_for(scenario(tenant), 60))
        assert joined is not None and joined.error_code == 0, joined
        [assigned] = joined.assignment.topic_partitions
        topic_ids[tenant.key] = assigned.topic_id
        assert escape.error_code == ErrorCode.INVALID_REGULAR_EXPRESSION
        assert escape.error_message and "regex" in escape.error_message
        groups = {g.group_id: g for g in described.groups}
        assert set(groups) == {"wire", "sneaky"}
        wire = groups["wire"]
        assert wire.error_code == 0 and wire.group_state
        [member] = wire.members
        assert member.subscribed_topic_names == ["events"]
        assert [(tp.topic_name, tp.topic_id) for tp in member.assignment.topic_partitions] == [
            ("events", assigned.topic_id)]
        assert groups["sneaky"].error_code != 0
        assert tenant.prefix not in str(described)
    assert topic_ids[a.key] != topic_ids[b.key]


@pytest.mark.parametrize("regex", ["^orders.*", "(^orders.*)", "orders|audit", ".*", "[a-z]+",
                                   "x|^.*", "(.*)$", "a\\|^b"])
def test_confined_regexes_match_only_the_namespace(regex: str) -> None:
    prefix = "lkc-abc_"
    confined = re.compile(topic_regex.confine(prefix, regex))
    for name in ("orders", "orders-eu", "audit", "x", "a|b", ".hidden"):
        assert not confined.fullmatch(name)
        assert not confined.fullmatch("lkc-zzz_" + name)
    assert confined.fullmatch(prefix + "orders") or confined.fullmatch(prefix + "audit") \
        or confined.fullmatch(prefix + "x") or confined.fullmatch(prefix + "a|b")
    assert topic_regex.unconfine(prefix, topic_regex.confine(prefix, regex)) is not None


@pytest.mark.parametrize("regex", [").*|(.*", "(?x)a#)|(.*", "\\Qa\\E)|(.*", "(?m)^x", "a\n)|(.*",
                                   "(?P<n>x)", "[", "(?i)orders"])
def test_regexes_that_could_escape_are_refused(regex: str) -> None:
    with pytest.raises(topic_regex.RegexRefused):
        topic_regex.confine("lkc-abc_", regex)


@pytest.mark.skipif(shutil.which("java") is None, reason="no java on this machine")
def test_java_console_consumer_with_the_consumer_protocol(
    new_tenant: TenantFactory, tmp_path: Path,
) -> None:
    """Kafka's own consumer, speaking KIP-848, for two tenants with the same names."""
    a, b = new_tenant(), new_tenant()
    for tenant, count in ((a, 3), (b, 2)):
        create_topics(tenant, "jvm848")
        produce(tenant.confluent(), "jvm848", [f"{tenant.key}-{i}" for i in range(count)])

    for tenant, count in ((a, 3), (b, 2)):
        props = tmp_path / f"{tenant.key}.properties"
        props.write_text(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n"
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{tenant.key}" password="{tenant.secret}";\ngroup.protocol=consumer\n')
        done = subprocess.run(
            ["java", "-Xmx128m", "-cp", f"{JAVA_LIBS}/*",
             "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server",
             tenant.bootstrap, "--command-config", str(props), "--topic", "jvm848",
             "--from-beginning", "--group", "jvm-app", "--max-messages", str(count),
             "--timeout-ms", "60000"],
            capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        assert sorted(done.stdout.split()) == [f"{tenant.key}-{i}" for i in range(count)]
        admin = AdminClient(tenant.confluent())
        described = admin.describe_consumer_groups(["jvm-app"], request_timeout=10)["jvm-app"]
        assert described.result(15).type == ConsumerGroupType.CONSUMER
