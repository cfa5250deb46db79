"""The control channel against a real system cluster: what satellites and mothership see."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType
from cryptography.fernet import Fernet

from streamplane.channel import (
    ChannelConfig,
    ChannelError,
    DesiredPublisher,
    KafkaDesiredSource,
    KafkaStatusSink,
    StatusReader,
    ensure_topics,
)
from streamplane.channel.codec import DesiredCodec
from streamplane.channel.registry import SatelliteAnnouncer, SatelliteDirectory
from streamplane.channel.source import DesiredSnapshot
from streamplane.models.psc import PhysicalClusterSpec
from streamplane.models.satellite import SatelliteInfo
from streamplane.models.status import ClusterState, ClusterStatus
from streamplane.mothership.reconciler import Reconciler
from streamplane.mothership.store import Store

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]
T = TypeVar("T")
WAIT_S = 30.0


def make_psc(cluster_id: str, satellite: str, generation: int = 1,
             password: str = "x" * 16) -> PhysicalClusterSpec:
    return PhysicalClusterSpec(id=cluster_id, satellite=satellite, generation=generation,
                               brokers=({"id": 1},), super_user={"password": password})


def make_status(cluster_id: str, satellite: str, state: ClusterState,
                generation: int = 1) -> ClusterStatus:
    return ClusterStatus(id=cluster_id, satellite=satellite, status=state, generation=generation,
                         observed_generation=generation, kafka_version="4.3.1",
                         bootstrap="127.0.0.1:1234", updated_at=time.time())


async def eventually(check: Callable[[], Awaitable[T | None]], what: str,
                     timeout: float = WAIT_S) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last saw {last!r}")


def generations(snap: DesiredSnapshot) -> dict[str, int]:
    return {cid: spec.generation for cid, spec in snap.specs.items()}


async def complete_snapshot(source: KafkaDesiredSource,
                            want: Callable[[DesiredSnapshot], bool],
                            what: str, timeout: float = WAIT_S) -> DesiredSnapshot:
    async def check() -> DesiredSnapshot | None:
        snap = await source.snapshot()
        return snap if snap.complete and want(snap) else None

    return await eventually(check, what, timeout)


def raw_records(config: ChannelConfig, topic: str, expected: int) -> list[Any]:
    """Every record of ``topic``, read with a plain consumer (no channel code)."""
    consumer = Consumer({**config.client_config(), "group.id": f"raw-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        records: list[Any] = []
        deadline = time.monotonic() + WAIT_S
        while len(records) < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                records.append(msg)
        return records
    finally:
        consumer.close()


def produce_raw(config: ChannelConfig, topic: str,
                records: list[tuple[str, bytes, list[tuple[str, bytes]]]]) -> None:
    producer = Producer(config.client_config())
    for key, value, headers in records:
        producer.produce(topic, key=key.encode(), value=value, headers=headers)
    assert producer.flush(WAIT_S) == 0


# ---- desired ----------------------------------------------------------------------------


def test_each_satellite_sees_only_its_own_clusters(channel: ChannelConfig) -> None:
    async def main() -> None:
        async with DesiredPublisher(channel) as pub, \
                KafkaDesiredSource(channel, "sat-a") as a, KafkaDesiredSource(channel, "sat-b") as b:
            await pub.publish(make_psc("orders", "sat-a", password="orders-password-1"))
            await pub.publish(make_psc("payments", "sat-a"))
            await pub.publish(make_psc("clicks", "sat-b"))
            snap_a = await complete_snapshot(a, lambda s: len(s.specs) == 2, "sat-a's clusters")
            snap_b = await complete_snapshot(b, lambda s: len(s.specs) == 1, "sat-b's cluster")
            assert set(snap_a.specs) == {"orders", "payments"} and not snap_a.errors
            assert set(snap_b.specs) == {"clicks"} and not snap_b.errors
            assert snap_a.specs["orders"] == make_psc("orders", "sat-a",
                                                       password="orders-password-1")
            assert (snap_a.specs["orders"].super_user.password.get_secret_value()
                    == "orders-password-1")

    asyncio.run(main())


def test_new_generation_replaces_move_and_tombstone_remove(channel: ChannelConfig) -> None:
    async def main() -> None:
        async with DesiredPublisher(channel) as pub, \
                KafkaDesiredSource(channel, "sat-a") as a, KafkaDesiredSource(channel, "sat-b") as b:
            await pub.publish(make_psc("orders", "sat-a", generation=1))
            await pub.publish(make_psc("audit", "sat-a", generation=1))
            await complete_snapshot(a, lambda s: generations(s) == {"orders": 1, "audit": 1},
                                    "generation 1")
            await pub.publish(make_psc("orders", "sat-a", generation=2))
            await complete_snapshot(a, lambda s: generations(s) == {"orders": 2, "audit": 1},
                                    "generation 2 to replace generation 1")
            await pub.withdraw("audit", "sat-a")
            await complete_snapshot(a, lambda s: generations(s) == {"orders": 2},
                                    "the tombstone to remove audit")
            # handing a cluster to another satellite takes it away from the first
            await pub.publish(make_psc("orders", "sat-b", generation=3))
            await complete_snapshot(a, lambda s: not s.specs, "orders to leave sat-a")
            await complete_snapshot(b, lambda s: generations(s) == {"orders": 3},
                                    "orders to arrive at sat-b")

    asyncio.run(main())


def test_a_satellite_that_was_down_catches_up_before_its_snapshot_is_complete(
        channel: ChannelConfig) -> None:
    """Everything is published while the satellite is away; when it returns, no snapshot
    may show a partial or stale view as complete (that would remove or roll back clusters)."""
    expected: dict[str, int] = {}

    async def main() -> None:
        async with DesiredPublisher(channel) as pub:
            for gen in range(1, 6):
                await asyncio.gather(*(pub.publish(make_psc(f"c{i}", "sat-a", generation=gen))
                                       for i in range(30)))
            for i in range(0, 30, 3):
                await pub.withdraw(f"c{i}", "sat-a")
            await pub.publish(make_psc("elsewhere", "sat-b", generation=7))
        expected.update({f"c{i}": 5 for i in range(30) if i % 3})

        source = KafkaDesiredSource(channel, "sat-a")
        try:
            first = await source.snapshot()
            assert not first.complete and not first.specs, "complete before reading anything"
            seen_incomplete = 1
            deadline = time.monotonic() + WAIT_S
            while time.monotonic() < deadline:
                snap = await source.snapshot()
                if snap.complete:
                    break
                assert not snap.specs and not snap.errors, "a partial view was exposed"
                seen_incomplete += 1
                await asyncio.sleep(0.01)
            assert snap.complete, f"not caught up after {WAIT_S:.0f} s: {source.last_error}"
            assert generations(snap) == expected and not snap.errors
        finally:
            await source.close()

    asyncio.run(main())


def test_a_satellite_started_before_the_topics_exist_waits_for_them(
        system_config: ChannelConfig) -> None:
    tag = uuid.uuid4().hex[:10]
    config = system_config.model_copy(update={"desired_topic": f"desired-{tag}",
                                              "status_topic": f"status-{tag}"})

    async def main() -> None:
        async with KafkaDesiredSource(config, "sat-a") as a:
            async def explained() -> str | None:
                snap = await a.snapshot()
                assert not snap.complete
                return a.last_error

            why = await eventually(explained, "the source to say why it is not complete")
            assert f"desired-{tag}" in why and "does not exist" in why
            await asyncio.to_thread(ensure_topics, config)
            async with DesiredPublisher(config) as pub:
                await pub.publish(make_psc("orders", "sat-a"))
            await complete_snapshot(a, lambda s: "orders" in s.specs, "the new topic's PSC")

    asyncio.run(main())


def test_unreadable_desired_state_is_reported_and_never_crashes(channel: ChannelConfig) -> None:
    other_key = DesiredCodec(ChannelConfig.new_encryption_key())
    right_key = DesiredCodec(channel.encryption_key)
    # "broken" is sealed with the right key but is no valid PSC
    plain = DesiredCodec(None)
    to_a = [("satellite", b"sat-a")]
    broken = make_psc("broken", "sat-a").to_wire() | {"brokers": []}
    produce_raw(channel, channel.desired_topic, [
        ("garbage", b"\x00\xffnot a psc", to_a),
        ("plain", plain.encode(make_psc("plain", "sat-a"))[0], to_a),
        ("foreign", other_key.encode(make_psc("foreign", "sat-a"))[0], to_a),
        ("broken", _seal(channel, broken), to_a),
        ("misfiled", right_key.encode(make_psc("elsewhere", "sat-a"))[0], to_a),
        ("b-garbage", b"garbage for b", [("satellite", b"sat-b")]),
    ])

    async def main() -> None:
        async with KafkaDesiredSource(channel, "sat-a") as a, \
                KafkaDesiredSource(channel, "sat-b") as b:
            snap = await complete_snapshot(a, lambda s: len(s.errors) == 5, "five errors")
            assert not snap.specs
            assert "not encrypted" in snap.errors["garbage"]
            assert "not encrypted" in snap.errors["plain"]
            assert "could not be decrypted" in snap.errors["foreign"]
            assert "brokers: a cluster needs at least one broker" in snap.errors["broken"]
            assert "holds cluster 'elsewhere'" in snap.errors["misfiled"]
            snap_b = await complete_snapshot(b, lambda s: True, "sat-b to catch up")
            assert set(snap_b.errors) == {"b-garbage"} and not snap_b.specs
            # a good PSC for the same key replaces the error: the follower kept going
            async with DesiredPublisher(channel) as pub:
                await pub.publish(make_psc("plain", "sat-a", generation=2))
            snap = await complete_snapshot(a, lambda s: "plain" in s.specs, "the fixed PSC")
            assert "plain" not in snap.errors and len(snap.errors) == 4

    asyncio.run(main())


def _seal(channel: ChannelConfig, doc: dict[str, Any]) -> bytes:
    assert channel.encryption_key is not None
    return Fernet(channel.encryption_key.get_secret_value()).encrypt(json.dumps(doc).encode())


def test_the_password_never_appears_in_the_desired_topic(channel: ChannelConfig) -> None:
    password = f"pw-{uuid.uuid4().hex}"
    unsealed = channel.model_copy(update={"encryption_key": None,
                                          "desired_topic": channel.desired_topic + "-plain"})
    ensure_topics(unsealed)

    async def main() -> None:
        async with DesiredPublisher(channel) as sealed_pub, DesiredPublisher(unsealed) as pub:
            await sealed_pub.publish(make_psc("orders", "sat-a", generation=4, password=password))
            await pub.publish(make_psc("orders", "sat-a", generation=4, password=password))

    asyncio.run(main())
    [sealed] = raw_records(channel, channel.desired_topic, 1)
    assert sealed.key() == b"orders"
    assert password.encode() not in sealed.value()
    assert b"sat-a" not in sealed.value(), "the whole document is sealed, not just the password"
    assert dict(sealed.headers()) == {"satellite": b"sat-a", "generation": b"4",
                                      "encoding": b"fernet+json"}
    # the same check on an unsealed topic does see the password: the assertion above can fail
    [plain] = raw_records(unsealed, unsealed.desired_topic, 1)
    assert password.encode() in plain.value()


# ---- status -----------------------------------------------------------------------------


def test_status_round_trip_from_satellites_to_the_mothership(channel: ChannelConfig) -> None:
    b_status = make_status("orders", "sat-b", ClusterState.HEALTHY)

    async def main() -> None:
        async with KafkaStatusSink(channel, "sat-a") as sink_a, \
                KafkaStatusSink(channel, "sat-b") as sink_b, StatusReader(channel) as reader:
            await reader.wait_caught_up(WAIT_S)
            await sink_a.publish(make_status("orders", "sat-a", ClusterState.STARTING))
            await sink_b.publish(b_status)
            await sink_a.publish(make_status("orders", "sat-a", ClusterState.HEALTHY, 2))
            st = await reader.wait_for(
                "sat-a", "orders", lambda s: s is not None and s.observed_generation == 2, WAIT_S)
            assert st is not None and st.status == ClusterState.HEALTHY
            await reader.wait_for("sat-b", "orders", lambda s: s is not None, WAIT_S)
            assert set(reader.all()) == {("sat-a", "orders"), ("sat-b", "orders")}
            await sink_a.forget("orders")
            await reader.wait_for("sat-a", "orders", lambda s: s is None, WAIT_S)
            assert set(reader.all()) == {("sat-b", "orders")} and not reader.errors()

        # a mothership that starts later reads the same picture from the compacted topic
        async with StatusReader(channel) as late:
            await late.wait_caught_up(WAIT_S)
            assert set(late.all()) == {("sat-b", "orders")}
            assert late.get("sat-b", "orders") == b_status

    asyncio.run(main())
    [*records] = raw_records(channel, channel.status_topic, 4)
    assert {r.key() for r in records} == {b"sat-a/orders", b"sat-b/orders"}


# ---- satellites ---------------------------------------------------------------------------


def test_the_mothership_records_the_zone_a_satellite_restarted_with(
        channel: ChannelConfig, tmp_path: Path) -> None:
    name = f"sat-{uuid.uuid4().hex[:8]}"
    store = Store.in_data_dir(tmp_path / "mothership")
    store.migrate()

    async def main() -> None:
        announcer = SatelliteAnnouncer(channel)
        directory = SatelliteDirectory(channel)
        directory.start()
        async with DesiredPublisher(channel) as publisher, StatusReader(channel) as statuses:
            reconciler = Reconciler(store, publisher, statuses, directory)
            try:
                for zone, max_brokers in (("zone-a", 6), ("zone-b", 9)):
                    assert await announcer.announce(SatelliteInfo(
                        name=name, zone=zone, max_brokers=max_brokers, memory_mb=4096))
                    await eventually(lambda z=zone: _announced(directory, name, z),
                                     f"the directory to show {name} in {zone}")
                    reconciler._sync_satellites()
                    recorded = store.satellites.get(name)
                    assert (recorded.zone, recorded.capacity) == (
                        zone, {"max_brokers": max_brokers, "memory_mb": 4096})
            finally:
                await announcer.close()
                await directory.close()

    asyncio.run(main())


async def _announced(directory: SatelliteDirectory, name: str, zone: str) -> bool:
    return any(i.name == name and i.zone == zone for i in directory.all())


# ---- topics -----------------------------------------------------------------------------


def _topic_configs(config: ChannelConfig, topics: list[str]) -> dict[str, dict[str, str]]:
    admin = AdminClient(config.client_config())
    futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, t) for t in topics])
    return {res.name: {k: e.value for k, e in fut.result(timeout=WAIT_S).items()}
            for res, fut in futures.items()}


def test_topics_are_compacted_and_ensure_is_idempotent(channel: ChannelConfig) -> None:
    configs = _topic_configs(channel, [channel.desired_topic, channel.status_topic])
    for name, cfg in configs.items():
        assert cfg["cleanup.policy"] == "compact", name
        assert cfg["min.insync.replicas"] == "1", name  # one broker: RF 1
    assert ensure_topics(channel) == []


def test_a_topic_created_without_compaction_is_fixed(system_config: ChannelConfig) -> None:
    tag = uuid.uuid4().hex[:10]
    config = system_config.model_copy(update={"desired_topic": f"desired-{tag}",
                                              "status_topic": f"status-{tag}"})
    admin = AdminClient(config.client_config())
    futures = admin.create_topics([NewTopic(config.status_topic, num_partitions=1,
                                            replication_factor=1,
                                            config={"cleanup.policy": "delete"})])
    futures[config.status_topic].result(timeout=WAIT_S)
    said = ensure_topics(config)
    assert any("created compacted topic " + config.desired_topic in s for s in said), said
    assert any("cleanup.policy=compact" in s and config.status_topic in s for s in said), said
    configs = _topic_configs(config, [config.desired_topic, config.status_topic])
    assert {c["cleanup.policy"] for c in configs.values()} == {"compact"}


def test_writes_never_create_a_topic(system_config: ChannelConfig) -> None:
    """A topic the broker auto-created would not be compacted: the channel refuses to."""
    missing = system_config.model_copy(update={"desired_topic": f"nope-{uuid.uuid4().hex[:8]}"})

    async def main() -> None:
        pub = DesiredPublisher(missing, ack_timeout_s=3)
        try:
            with pytest.raises(ChannelError, match="did not acknowledge"):
                await pub.publish(make_psc("orders", "sat-a"))
        finally:
            await pub.close(timeout=0.5)

    asyncio.run(main())
    topics = AdminClient(system_config.client_config()).list_topics(timeout=WAIT_S).topics
    assert missing.desired_topic not in topics


# ---- failures ---------------------------------------------------------------------------


@pytest.mark.timeout(300)  # two waits of up to 90 s on a loaded machine, after a restart
def test_the_channel_survives_a_system_cluster_restart(
        channel: ChannelConfig, system_control: Any) -> None:
    """A satellite keeps its last view while the system cluster is away, keeps reconciling
    (status writes stop waiting), and picks up where it left off when it returns."""
    status = make_status("orders", "sat-a", ClusterState.HEALTHY)

    async def main() -> None:
        async with DesiredPublisher(channel) as pub, KafkaDesiredSource(channel, "sat-a") as a, \
                KafkaStatusSink(channel, "sat-a", ack_timeout_s=1.0) as sink, \
                StatusReader(channel) as reader:
            await pub.publish(make_psc("orders", "sat-a", generation=1))
            await complete_snapshot(a, lambda s: generations(s) == {"orders": 1}, "generation 1")
            await sink.publish(status)
            await reader.wait_for("sat-a", "orders", lambda s: s is not None, WAIT_S)

            await asyncio.to_thread(system_control.down)
            during = await a.snapshot()
            assert during.complete and generations(during) == {"orders": 1}
            await sink.publish(status.model_copy(update={"generation": 2}))
            assert not sink.reachable
            started = time.monotonic()
            await sink.publish(status.model_copy(update={"generation": 3}))
            assert time.monotonic() - started < 0.5, "a status write waited for a down cluster"

            await asyncio.to_thread(system_control.up)
            await pub.publish(make_psc("orders", "sat-a", generation=2))
            # after a restart the clients reconnect with backoff (up to 10 s a try), and a
            # loaded machine restarts the broker slowly: allow three times the usual wait
            await complete_snapshot(a, lambda s: generations(s) == {"orders": 2},
                                    "generation 2 after the restart", 3 * WAIT_S)
            await reader.wait_for("sat-a", "orders",
                                  lambda s: s is not None and s.generation == 3, 3 * WAIT_S)

            async def reachable() -> bool:
                return sink.reachable

            await eventually(reachable, "the sink to be reachable again")

    asyncio.run(main())
