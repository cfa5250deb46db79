"""The monitor against a real 3-broker cluster: sizes from DescribeLogDirs, rates from the
JMX exporter, placement from metadata, zones and cells from the satellite's status."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import KafkaError, Message, Producer
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic

from streamplane.loops.balancer.analyzer import Analyzer
from streamplane.loops.balancer.model import BrokerState, ClusterModel, Resource
from streamplane.loops.balancer.monitor import build_model_from_status

from .conftest import LoadCluster

pytestmark = pytest.mark.kafka
VALUE = b"v" * 1000
QUIET = logging.getLogger("streamplane.rdkafka.tests")


def create_topic(cluster: LoadCluster, name: str, assignment: dict[int, list[int]]) -> None:
    """Create ``name`` with an explicit replica assignment (partition -> brokers)."""
    conf = cluster.client_config()
    admin = KafkaAdminClient(bootstrap_servers=conf["bootstrap.servers"].split(","),
                             security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512",
                             sasl_plain_username=cluster.user, sasl_plain_password=cluster.password)
    try:
        admin.create_topics([NewTopic(name, replica_assignments=assignment)])
    finally:
        admin.close()


def model_of(cluster: LoadCluster, **kwargs: Any) -> ClusterModel:
    status = cluster.local.status(cluster.psc.id)
    assert status is not None
    return asyncio.run(build_model_from_status(status, cluster.user, cluster.password, **kwargs))


def test_sizes_placement_zones_and_cells_come_from_the_cluster(load_cluster: LoadCluster) -> None:
    topic = f"lkc-mon1_sizes-{uuid.uuid4().hex[:6]}"
    create_topic(load_cluster, topic, {0: [1, 2, 3], 1: [2, 3, 1], 2: [3, 1, 2]})
    producer = Producer({**load_cluster.client_config(), "acks": "all", "linger.ms": 20, "logger": QUIET})
    for n in range(3000):
        producer.produce(topic, VALUE, partition=0 if n < 2000 else 1)
        if n % 500 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0

    model = model_of(load_cluster, rate_window_s=0, tenant_cells={"lkc-mon1": "cell-0"})

    assert [(b.id, b.zone, b.cell, b.state) for b in model.brokers] == [
        (1, "zone-a", "cell-0", BrokerState.ALIVE), (2, "zone-b", "cell-0", BrokerState.ALIVE),
        (3, "zone-c", "cell-1", BrokerState.ALIVE)]
    assert all((b.capacity.disk_bytes or 0) > 10 * 2**20 for b in model.brokers)
    p0, p1, p2 = (model.partition(topic, i) for i in range(3))
    assert (p0.replicas, p0.leader, p0.isr) == ((1, 2, 3), 1, (1, 2, 3))
    assert (p1.replicas, p1.leader) == ((2, 3, 1), 2)
    # the log holds the values plus a few per cent of record and batch headers
    assert 2000 * len(VALUE) <= p0.size_bytes <= 2000 * len(VALUE) * 1.1
    assert 1000 * len(VALUE) <= p1.size_bytes <= 1000 * len(VALUE) * 1.1
    assert p2.size_bytes == 0
    assert p0.tenant == "lkc-mon1" and model.tenant_cell(p0) == "cell-0"
    # every broker has a replica of each partition
    for b in (1, 2, 3):
        assert model.load_of(b, Resource.DISK) >= p0.size_bytes + p1.size_bytes
    assert "one-minute" in model.notes[0]


@dataclass
class SteadyProducer:
    """Produces to the given partitions in turn at ``rate`` messages/s, recording acks."""

    config: dict[str, Any]
    topic: str
    partitions: list[int]
    rate: float
    acks: list[tuple[float, int, int]] = field(default_factory=list)  # (time, partition, bytes)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> SteadyProducer:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        producer = Producer({**self.config, "acks": "all", "linger.ms": 5, "logger": QUIET})

        def delivered(err: KafkaError | None, msg: Message) -> None:
            if err is None:
                self.acks.append((time.monotonic(), msg.partition(), len(msg.value())))

        n = 0
        start = time.monotonic()
        while not self._stop.is_set():
            producer.produce(self.topic, VALUE, partition=self.partitions[n % len(self.partitions)],
                             on_delivery=delivered)
            n += 1
            producer.poll(0)
            delay = start + n / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        producer.flush(30)

    def bytes_per_s(self, since: float, until: float) -> dict[int, float]:
        out: dict[int, float] = {}
        for at, partition, size in list(self.acks):
            if since <= at <= until:
                out[partition] = out.get(partition, 0.0) + size
        return {p: b / (until - since) for p, b in out.items()}

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)


def consume(cluster: LoadCluster, topic: str, partitions: list[int], stop: threading.Event) -> None:
    """Read ``partitions`` from the start, without a consumer group: joining one would
    create ``__consumer_offsets`` (50 partitions) right inside the measured window."""
    conf = cluster.client_config()
    consumer = KafkaConsumer(bootstrap_servers=conf["bootstrap.servers"].split(","), group_id=None,
                             security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512",
                             sasl_plain_username=cluster.user, sasl_plain_password=cluster.password,
                             auto_offset_reset="earliest", enable_auto_commit=False)
    consumer.assign([TopicPartition(topic, p) for p in partitions])
    try:
        while not stop.is_set():
            consumer.poll(timeout_ms=200)
    finally:
        consumer.close()


def test_rates_follow_what_is_produced_and_consumed(load_cluster: LoadCluster) -> None:
    topic = f"rates-{uuid.uuid4().hex[:6]}"
    # broker 1 leads partitions 0 and 1; partition 0 gets three times the traffic
    create_topic(load_cluster, topic, {0: [1, 2, 3], 1: [1, 3, 2], 2: [2, 3, 1]})
    conf = load_cluster.client_config()
    producer = SteadyProducer(conf, topic, partitions=[0, 0, 0, 1], rate=400).start()
    stop = threading.Event()
    reader = threading.Thread(target=consume, args=(load_cluster, topic, [0, 1, 2], stop), daemon=True)
    reader.start()
    try:
        time.sleep(3)  # let producer and consumer settle
        since = time.monotonic()
        model = model_of(load_cluster, rate_window_s=6)
        until = time.monotonic()
    finally:
        producer.stop()
        stop.set()
        reader.join(30)

    sent = producer.bytes_per_s(since, until)
    produced = sum(sent.values())
    assert produced > 20_000, f"the producer could not keep up: {sent}"
    p0, p1, p2 = (model.partition(topic, i) for i in range(3))
    measured = p0.bytes_in_per_s + p1.bytes_in_per_s + p2.bytes_in_per_s
    assert measured == pytest.approx(produced, rel=0.35), (measured, sent)
    # broker 1's topic rate is split by how much each partition's log grew
    assert p0.bytes_in_per_s / (p0.bytes_in_per_s + p1.bytes_in_per_s) == pytest.approx(0.75, abs=0.1)
    assert p2.bytes_in_per_s == 0
    assert p0.bytes_out_per_s + p1.bytes_out_per_s > 0.2 * produced, "the consumer's reads show as bytes out"
    # each broker hosts a replica of every partition, so each receives the whole topic
    for b in (1, 2, 3):
        assert model.load_of(b, Resource.NW_IN) >= measured * 0.99
    assert model.load_of(2, Resource.NW_OUT) <= model.load_of(1, Resource.NW_OUT)
    assert "counter increase" in model.notes[0]

    # and the analyzer can plan on what was measured
    plan = Analyzer().plan(model)
    assert plan.unmet == {}
