"""Brokers restarted one at a time behind the gateway: its clients do not notice.

A 3-broker shared cluster (RF=3, min.insync.replicas=2) run by a satellite, with a gateway
in front. A tenant's idempotent producer (acks=all) and a consumer group keep running
through the gateway, with the settings they started with, while each broker in turn is
stopped gracefully (SIGTERM) or killed (SIGKILL) and restarted by the satellite.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError
from confluent_kafka.admin import AdminClient, NewTopic

from streamplane.gateway import GatewayConfig, InMemoryKeyVerifier
from streamplane.models.psc import PhysicalClusterSpec
from streamplane.models.status import ClusterState, ClusterStatus, NodeStatus
from streamplane.testing import SequenceProducer, consume_sequences, satellite_cluster, wait_for

from .conftest import RunningGateway, SharedCluster, Tenant, TenantFactory, running_gateway

pytestmark = [pytest.mark.kafka]
log = logging.getLogger(__name__)

#: three brokers on a machine shared with other Kafka tests start slowly
HEALTHY_TIMEOUT_S = 200.0
#: a broker's stop, the satellite's restart and its catching up, on a busy machine
REJOIN_TIMEOUT_S = 120.0
PRODUCE_RATE = 200.0


def three_broker_spec() -> PhysicalClusterSpec:
    return PhysicalClusterSpec.model_validate({
        "id": "gw-restarts",
        "controllers": {"mode": "combined", "count": 3},
        "brokers": [{"id": 1, "zone": "zone-a"}, {"id": 2, "zone": "zone-b"},
                    {"id": 3, "zone": "zone-c"}],
        "broker_configs": {"default.replication.factor": "3", "min.insync.replicas": "2",
                           "offsets.topic.replication.factor": "3",
                           "group.initial.rebalance.delay.ms": "0",
                           "auto.create.topics.enable": "false"},
        "jvm": {"heap_mb": 256},
        "super_user": {"password": secrets.token_urlsafe(18)},
    })


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedCluster]:
    """Three brokers (combined with the controllers), run by a satellite; replaces the
    one-broker cluster of conftest for this module, so its tenants live here."""
    psc = three_broker_spec()
    with satellite_cluster(Path(tmp_path_factory.mktemp("sat-gw-restarts")), psc,
                           HEALTHY_TIMEOUT_S) as (local, status):
        yield SharedCluster(local, psc, status.bootstrap or "")


@pytest.fixture(scope="module")
def gateway(cluster: SharedCluster, verifier: InMemoryKeyVerifier) -> Iterator[RunningGateway]:
    config = GatewayConfig(upstream_bootstrap=tuple(cluster.bootstrap.split(",")),
                           recheck_interval_s=1.0)
    with running_gateway(config, verifier) as running:
        yield running


# ---- the cluster ---------------------------------------------------------------------------


def status(cluster: SharedCluster) -> ClusterStatus:
    st: ClusterStatus | None = cluster.local.status(cluster.psc.id)
    assert st is not None, f"no status reported for {cluster.psc.id}"
    return st


def broker(cluster: SharedCluster, node_id: int) -> NodeStatus:
    return next(b for b in status(cluster).brokers if b.id == node_id)


def all_in_sync(cluster: SharedCluster, since: float = 0.0) -> bool:
    """Every broker running and registered, no partition under-replicated (as reported
    after ``since``)."""
    st = status(cluster)
    return (st.updated_at > since and st.status == ClusterState.HEALTHY
            and st.under_replicated_partitions == 0
            and all(b.state == "RUNNING" and b.registered for b in st.brokers))


def restart_broker(cluster: SharedCluster, node_id: int, sig: signal.Signals) -> None:
    """Send ``sig`` to the broker's process; return once the satellite has started it
    again, it has registered, and no partition is under-replicated any more."""
    wait_for(lambda: all_in_sync(cluster), REJOIN_TIMEOUT_S, "all brokers to be in sync")
    before = broker(cluster, node_id)
    assert before.pid
    started = time.monotonic()
    os.kill(before.pid, sig)

    def rejoined() -> bool:
        now = broker(cluster, node_id)
        return bool(now.pid and now.pid != before.pid and now.state == "RUNNING"
                    and now.registered)

    wait_for(rejoined, REJOIN_TIMEOUT_S, f"broker {node_id} to be restarted after {sig.name}")
    since = time.time()
    wait_for(lambda: all_in_sync(cluster, since), REJOIN_TIMEOUT_S,
             f"broker {node_id} to catch up (no under-replicated partition)", interval=0.5)
    log.info("broker %d: %s, back and in sync after %.0f s", node_id, sig.name,
             time.monotonic() - started)


def create_topic(tenant: Tenant, partitions: int = 6) -> str:
    topic = f"seq-{uuid.uuid4().hex[:6]}"
    admin = AdminClient(tenant.confluent())
    admin.create_topics([NewTopic(topic, partitions, 3)], request_timeout=20)[topic].result(30)
    wait_for(lambda: topic in admin.list_topics(timeout=5).topics, 20, f"topic {topic}")
    return topic


# ---- a consumer group that keeps reading ---------------------------------------------------


@dataclass
class GroupReader:
    """A consumer in a group, polling in a thread; records every value and when it came."""

    config: dict[str, Any]
    topic: str
    group: str
    seen: set[int] = field(default_factory=set)
    seen_at: list[float] = field(default_factory=list)
    fatal: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> GroupReader:
        self._thread = threading.Thread(target=self._run, name="group-reader", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        consumer = Consumer({**self.config, "group.id": self.group,
                             "auto.offset.reset": "earliest", "auto.commit.interval.ms": 1000})
        try:
            consumer.subscribe([self.topic])
            while not self._stop.is_set():
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                err = msg.error()
                if err is not None:
                    if err.fatal():
                        self.fatal.append(str(err))
                        return
                    continue
                self.seen.add(int(msg.value()))
                self.seen_at.append(time.monotonic())
        finally:
            consumer.close()

    def read_since(self, t: float) -> int:
        return sum(1 for x in list(self.seen_at) if x >= t)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)


# ---- the test ------------------------------------------------------------------------------


def _roll(cluster: SharedCluster, gateway: RunningGateway, tenant: Tenant,
          restarts: list[tuple[int, signal.Signals]]) -> None:
    topic = create_topic(tenant)
    # what the clients report besides delivery results; a broker restart is a transport
    # matter, never an authentication failure
    reported: list[KafkaError] = []
    config = {**tenant.confluent(), "error_cb": reported.append}
    settings = dict(config)
    ports = gateway.broker_ports()
    producer = SequenceProducer(config, topic, rate_per_s=PRODUCE_RATE).start()
    reader = GroupReader(config, topic, f"readers-{uuid.uuid4().hex[:6]}").start()
    try:
        wait_for(lambda: len(producer.acked) >= 200 and reader.seen, 60,
                 "the producer and the group to get going")
        for node_id, sig in restarts:
            started = time.monotonic()
            restart_broker(cluster, node_id, sig)
            assert producer.errors == [], f"failed sends while broker {node_id} restarted"
            # both kept going across the restart
            wait_for(lambda: producer.acked_since(started) > 100 and reader.read_since(started) > 100,  # noqa: B023
                     60, f"the producer and the group to move on after broker {node_id}")
        producer.stop()
        # the group reads at least once: everything acknowledged reaches it
        wait_for(lambda: producer.acked <= reader.seen, 60,
                 "the group to read every acknowledged message")
    finally:
        producer.stop()
        reader.stop()

    assert producer.errors == [], "some sends failed"
    assert len(producer.acked) == producer.sent
    assert reader.fatal == []
    assert [str(e) for e in reported if e.code() == KafkaError._AUTHENTICATION or e.fatal()] == []
    got = set(consume_sequences(config, topic, expect=len(producer.acked), timeout=90))
    assert producer.acked <= got, f"lost {len(producer.acked - got)} acknowledged messages"
    # the clients never changed their settings, and the addresses they were given still hold
    assert config == settings and config["bootstrap.servers"] == gateway.bootstrap
    # the brokers come back at the addresses the clients were first given
    admin = AdminClient(config)
    wait_for(lambda: {n: (b.host, b.port) for n, b in admin.list_topics(timeout=5).brokers.items()}
             == {n: ("127.0.0.1", port) for n, port in ports.items()}, 30,
             "the gateway to list every broker at its first address")


def test_the_gateway_fronts_all_three_brokers(
    cluster: SharedCluster, gateway: RunningGateway, new_tenant: TenantFactory,
) -> None:
    """Also brings the cluster up, so the restart tests' deadlines are theirs alone."""
    tenant = new_tenant()
    metadata = AdminClient(tenant.confluent()).list_topics(timeout=20)
    ports = gateway.broker_ports()
    assert sorted(ports) == [1, 2, 3]
    assert {n: (b.host, b.port) for n, b in metadata.brokers.items()} == {
        n: ("127.0.0.1", port) for n, port in ports.items()}
    assert all_in_sync(cluster)


@pytest.mark.timeout(280)
def test_graceful_rolling_restart_loses_no_send(
    cluster: SharedCluster, gateway: RunningGateway, new_tenant: TenantFactory,
) -> None:
    _roll(cluster, gateway, new_tenant(),
          [(1, signal.SIGTERM), (2, signal.SIGTERM), (3, signal.SIGTERM)])


@pytest.mark.timeout(200)
def test_killed_broker_loses_no_send_even_when_its_listener_closes(
    cluster: SharedCluster, verifier: InMemoryKeyVerifier, new_tenant: TenantFactory,
) -> None:
    """A gateway that closes a missing broker's listener at once: the clients connected
    through it are cut off and reconnect when it reopens, on the port they knew."""
    config = GatewayConfig(upstream_bootstrap=tuple(cluster.bootstrap.split(",")),
                           broker_removal_grace_s=0.0)
    with running_gateway(config, verifier) as impatient:
        tenant = dataclasses.replace(new_tenant(), bootstrap=impatient.bootstrap)
        _roll(cluster, impatient, tenant, [(2, signal.SIGKILL)])
