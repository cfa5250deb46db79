"""A real 3-broker Kafka cluster run by a satellite: clients, broker death, satellite death."""

from __future__ import annotations

import logging
import os
import signal
import time
import uuid

import psutil
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer

from streamplane.proc.process import find_by_marker
from streamplane.satellite.kafka.node import KAFKA_MAIN
from streamplane.testing import SequenceProducer, consume_sequences, wait_for

from .conftest import RunningCluster


def _create_topic(cluster: RunningCluster, partitions: int = 6) -> str:
    topic = f"t-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(cluster.client_config())
    admin.create_topics([NewTopic(topic, partitions, 3)])[topic].result(30)
    return topic


def test_cluster_reports_three_registered_brokers_in_three_zones(trio: RunningCluster) -> None:
    st = trio.status()
    assert [b.id for b in st.brokers] == [1, 2, 3]
    assert all(b.state == "RUNNING" and b.registered and b.pid for b in st.brokers)
    assert st.quorum_leader in {1, 2, 3}
    assert st.under_replicated_partitions == 0
    admin = AdminClient(trio.client_config())
    desc = admin.describe_cluster(request_timeout=10).result(15)
    assert sorted((n.id, n.rack) for n in desc.nodes) == [(1, "zone-a"), (2, "zone-b"), (3, "zone-c")]


def test_acks_all_round_trip_with_confluent_kafka_and_kafka_python(trio: RunningCluster) -> None:
    topic = _create_topic(trio)
    conf = trio.client_config()
    producer = SequenceProducer(conf, topic, rate_per_s=2000).start()
    wait_for(lambda: len(producer.acked) >= 2000, 60, "2000 acknowledged messages")
    producer.stop()
    assert producer.errors == []
    acked = producer.acked
    assert len(acked) == producer.sent

    got = consume_sequences(conf, topic, expect=len(acked), timeout=60)
    assert sorted(got) == sorted(acked)

    kp = KafkaConsumer(
        topic, bootstrap_servers=conf["bootstrap.servers"].split(","),
        security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username=conf["sasl.username"], sasl_plain_password=conf["sasl.password"],
        group_id=f"kp-{uuid.uuid4().hex[:6]}", auto_offset_reset="earliest",
        consumer_timeout_ms=10000,
    )
    seen: list[int] = []
    deadline = time.monotonic() + 60
    try:
        while len(seen) < len(acked) and time.monotonic() < deadline:
            for records in kp.poll(timeout_ms=1000).values():
                seen += [int(r.value) for r in records]
    finally:
        kp.close()
    assert sorted(seen) == sorted(acked)


def test_wrong_password_is_refused_on_the_client_listener(trio: RunningCluster) -> None:
    errors: list[KafkaError] = []
    producer = Producer({**trio.client_config(), "sasl.password": "not-the-password",
                         "logger": logging.getLogger("quiet-rdkafka"), "error_cb": errors.append})

    def refused() -> bool:
        producer.poll(0.2)
        return any(e.code() == KafkaError._AUTHENTICATION for e in errors)

    wait_for(refused, 30, "the broker to refuse the wrong password")
    assert "invalid credentials" in str(errors[-1])


def test_broker_killed_under_load_is_restarted_and_no_acked_message_is_lost(
    trio: RunningCluster,
) -> None:
    topic = _create_topic(trio)
    conf = trio.client_config()
    producer = SequenceProducer(conf, topic, rate_per_s=300).start()
    try:
        wait_for(lambda: len(producer.acked) >= 300, 30, "the producer to get going")
        victim = next(b for b in trio.status().brokers if b.id == 2)
        assert victim.pid
        os.kill(victim.pid, signal.SIGKILL)
        killed_at = time.monotonic()

        def restarted() -> bool:
            b = next(b for b in trio.status().brokers if b.id == 2)
            return bool(b.restarts >= 1 and b.pid and b.pid != victim.pid and b.state == "RUNNING")

        wait_for(restarted, 90, "the satellite to restart broker 2")
        # the producer goes on through the kill and the restart (the restart can be quicker
        # than the producer's failover: its sends to broker 2 wait until then)
        wait_for(lambda: producer.acked_since(killed_at) > 100, 60, "acks after the kill")
        trio.wait_healthy(timeout=120, since=time.time())
        assert trio.status().under_replicated_partitions == 0
        time.sleep(1)  # let a few more sends land after recovery
    finally:
        producer.stop()
    assert producer.errors == []
    got = consume_sequences(conf, topic, expect=len(producer.acked), timeout=90)
    assert producer.acked <= set(got), f"lost {len(producer.acked - set(got))} acknowledged messages"
    st = trio.status()
    assert next(b for b in st.brokers if b.id == 2).restarts >= 1


def test_satellite_killed_is_restarted_and_adopts_brokers_without_duplicates(
    trio: RunningCluster,
) -> None:
    before = {b.id: b.pid for b in trio.status().brokers}
    sat_pid = trio.local.satellite_pid()
    assert sat_pid
    os.kill(sat_pid, signal.SIGKILL)
    wait_for(lambda: not psutil.pid_exists(sat_pid) or psutil.Process(sat_pid).status() == "zombie",
             10, "the satellite to die")
    # the brokers outlive their satellite
    assert all(psutil.pid_exists(pid) for pid in before.values() if pid)

    restarted_at = time.time()
    new_pid = trio.local.start_satellite()
    assert new_pid != sat_pid
    st = trio.wait_healthy(timeout=60, since=restarted_at)
    assert {b.id: b.pid for b in st.brokers} == before
    running = find_by_marker(str(trio.local.layout.clusters_dir), KAFKA_MAIN)
    assert sorted(h.pid for h in running) == sorted(p for p in before.values() if p)
    assert all(b.restarts == 0 for b in st.brokers)
