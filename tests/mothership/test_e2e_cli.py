"""The user's path, end to end, through the CLI: cluster, key, client config, produce, consume, delete."""

from __future__ import annotations

import json
import logging
import time
import uuid

import psutil
from confluent_kafka import KafkaError, Producer
from kafka import KafkaConsumer, KafkaProducer

from streamplane.testing import SequenceProducer, consume_sequences, wait_for

from .conftest import Platform, cli, parse_properties


def _physical(platform: Platform) -> set[str]:
    root = platform.data_dir / "clusters"
    return {p.name for p in root.iterdir()} if root.exists() else set()


def test_dedicated_cluster_from_create_to_delete(platform: Platform) -> None:
    before = _physical(platform)
    cluster = json.loads(cli(platform, "cluster", "create", "e2e", "--type", "dedicated", "--cku", "1",
                             "--wait", "-o", "json"))
    assert cluster["name"] == "e2e" and cluster["type"] == "dedicated"
    assert cluster["status"] == "RUNNING" and cluster["bootstrap"]
    assert cluster["kafka_version"]

    key = json.loads(cli(platform, "api-key", "create", "--cluster", "e2e", "-o", "json"))
    assert key["key"] and key["secret"]
    props = parse_properties(cli(platform, "kafka-config", "--cluster", "e2e", "--api-key", key["key"],
                                 "--secret", key["secret"]))
    assert props["bootstrap.servers"] == cluster["bootstrap"]
    assert props["sasl.mechanism"] == "SCRAM-SHA-512"

    topic = f"orders-{uuid.uuid4().hex[:6]}"
    cli(platform, "topic", "create", topic, "--cluster", "e2e", "--partitions", "4")
    listed = json.loads(cli(platform, "topic", "list", "--cluster", "e2e", "-o", "json"))
    assert topic in [t["name"] for t in listed]

    # confluent-kafka (librdkafka) with the printed settings, minus the Java-only JAAS line
    rdkafka = {k: v for k, v in props.items() if k != "sasl.jaas.config"}
    producer = SequenceProducer(rdkafka, topic, rate_per_s=1000).start()
    wait_for(lambda: len(producer.acked) >= 500, 60, "500 acknowledged messages")
    producer.stop()
    assert producer.errors == []
    assert sorted(consume_sequences(rdkafka, topic, len(producer.acked), 60)) == sorted(producer.acked)

    # kafka-python with the same credentials
    common = {"bootstrap_servers": props["bootstrap.servers"].split(","),
              "security_protocol": props["security.protocol"], "sasl_mechanism": props["sasl.mechanism"],
              "sasl_plain_username": props["sasl.username"], "sasl_plain_password": props["sasl.password"]}
    kp = KafkaProducer(acks="all", **common)
    for i in range(100):
        kp.send(topic, str(100000 + i).encode()).get(timeout=30)
    kp.close()
    kc = KafkaConsumer(topic, group_id=f"kp-{uuid.uuid4().hex[:6]}", auto_offset_reset="earliest",
                       consumer_timeout_ms=15000, **common)
    seen = {int(r.value) for r in kc}
    kc.close()
    assert set(range(100000, 100100)) <= seen and producer.acked <= seen

    # a revoked key stops working for new connections within seconds
    cli(platform, "api-key", "revoke", key["key"])
    revoked_at = time.monotonic()
    errors: list[KafkaError] = []
    probe = Producer({**rdkafka, "error_cb": errors.append, "logger": logging.getLogger("quiet")})

    def refused() -> bool:
        probe.poll(0.2)
        return any(e.code() == KafkaError._AUTHENTICATION for e in errors)

    wait_for(refused, 10, "the revoked key to be refused")
    assert time.monotonic() - revoked_at < 5

    physical = _physical(platform) - before
    assert len(physical) == 1, "the dedicated cluster runs as one new physical cluster"
    cli(platform, "cluster", "delete", "e2e", "--wait")
    assert platform.cluster("e2e") is None
    leftovers = [p.pid for p in psutil.process_iter(["cmdline"])
                 if any(f"/clusters/{pc}/" in part for pc in physical for part in (p.info["cmdline"] or []))]
    assert leftovers == []
    assert not any((platform.data_dir / "clusters" / pc).exists() for pc in physical)
