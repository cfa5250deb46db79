"""A fleet of three satellites, each a host in its own network namespace, and a multi-zone
dedicated cluster over them that keeps serving through the loss of a whole zone.

The CI tier's one zone-loss scenario: a short run with a small data set. Longer variants
(GiBs of data, repeated kills) belong to the system tests.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from kafka import KafkaConsumer, KafkaProducer

from streamplane.credentials.cluster_ca import CertificateAuthority
from streamplane.engine.distribution import EngineResolver
from streamplane.mothership.server import MothershipLayout
from streamplane.proc.netns import Fleet
from streamplane.testing import (
    Platform,
    SequenceProducer,
    cli,
    consume_sequences,
    parse_properties,
    streamplane,
    wait_for,
)
from streamplane.versions import DEFAULT_KAFKA_VERSION

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(1800)]

ZONES = ("zone-a", "zone-b", "zone-c")


def _netns_of(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/ns/net")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    if os.geteuid() != 0:
        pytest.fail("the multi-zone tests need root, to give each satellite a network namespace")
    data_dir = tmp_path_factory.mktemp("fleet")
    env = {"STREAMPLANE_BROKER_HEAP_MB": "256"}
    try:
        res = streamplane("up", "--zones", "3", "--detach", "--data-dir", str(data_dir), env=env,
                          timeout=600)
        assert res.returncode == 0, res.stdout + res.stderr
        layout = MothershipLayout(data_dir)
        url = json.loads(layout.endpoint_file.read_text())["url"]
        yield Platform(data_dir, url, layout.token_file.read_text().strip())
    finally:
        state = json.loads((data_dir / "fleet.json").read_text()) if (data_dir / "fleet.json").exists() else {}
        down = streamplane("down", "--data-dir", str(data_dir), timeout=240)
        assert down.returncode == 0, down.stdout + down.stderr
        left = {h["netns"] for h in state.get("hosts", [])} & set(
            subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())
        assert not left, f"namespaces left behind by down: {left}"
        assert not any(str(data_dir) in " ".join(p.info["cmdline"] or [])
                       for p in psutil.process_iter(["cmdline"])), "a process outlived down"


def status_doc(platform: Platform) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(cli(platform, "status", "-o", "json"))
    return doc


def test_each_satellite_is_a_host_of_its_own_and_the_system_cluster_spans_three_zones(
        fleet: Platform) -> None:
    doc = status_doc(fleet)
    sats = {s["name"]: s for s in doc["satellites"]}
    assert sorted(s["zone"] for s in sats.values()) == list(ZONES)
    assert len({s["host"] for s in sats.values()}) == 3
    mine = _netns_of(os.getpid())
    spaces = {_netns_of(s["pid"]) for s in sats.values()}
    assert len(spaces) == 3 and mine not in spaces, "each satellite runs in its own network namespace"
    (system,) = [c for c in doc["clusters"] if c["id"] == "system"]
    assert system["status"] == "HEALTHY"
    assert sorted(b["zone"] for b in system["brokers"]) == list(ZONES)
    for b in system["brokers"]:
        sat = sats[b["satellite"]]
        assert b["host"] == sat["host"] and _netns_of(b["pid"]) == _netns_of(sat["pid"])


@dataclass
class Spread:
    """The multi-zone dedicated cluster the tests share, and a client config for it."""

    pc: dict[str, Any]
    client: dict[str, str]
    satellites: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def spread(fleet: Platform) -> Spread:
    cluster = json.loads(cli(fleet, "cluster", "create", "spread", "--type", "dedicated", "--cku", "1",
                             "--availability", "multi-zone", "--wait", "-o", "json", timeout=900))
    assert cluster["status"] == "RUNNING" and cluster["availability"] == "multi-zone", cluster
    doc = status_doc(fleet)
    sats = {s["name"]: s for s in doc["satellites"]}
    (pc,) = [c for c in doc["clusters"] if c["id"] != "system"]
    assert sorted(cluster["bootstrap"].split(",")) == sorted(f"{b['host']}:{b['port']}" for b in pc["brokers"])
    key = json.loads(cli(fleet, "api-key", "create", "--cluster", "spread", "-o", "json"))
    # the librdkafka form is given to confluent-kafka as it is
    props = parse_properties(cli(fleet, "kafka-config", "--cluster", "spread", "--api-key", key["key"],
                                 "--secret", key["secret"], "--format", "librdkafka"))
    assert "sasl.jaas.config" not in props
    return Spread(pc, props, sats)


def kafka_pids(satellite: str) -> set[int]:
    return {p.pid for p in psutil.process_iter(["cmdline"])
            if f"/satellites/{satellite}/clusters/" in " ".join(p.info["cmdline"] or [])
            and "kafka.Kafka" in " ".join(p.info["cmdline"] or [])}


def cluster_converged(fleet: Platform, pc_id: str) -> bool:
    c = [x for x in status_doc(fleet)["clusters"] if x["id"] == pc_id]
    return bool(c) and c[0]["status"] == "HEALTHY" and c[0]["under_replicated_partitions"] == 0


def verify(producer: SequenceProducer, client: dict[str, str], topic: str, what: str) -> None:
    assert producer.errors == []
    gaps = [b - a for a, b in zip(producer.ack_times, producer.ack_times[1:], strict=False)]
    print(f"{what}: {len(producer.acked)} acknowledged, longest gap between acknowledgements "
          f"{max(gaps):.2f} s")
    values = consume_sequences(client, topic, len(producer.acked), 120)
    assert len(values) == len(set(values)), "a message was duplicated"
    assert set(values) >= producer.acked, f"{len(producer.acked - set(values))} acknowledged message(s) lost"


def test_a_multi_zone_cluster_loses_no_acknowledged_message_when_a_zone_dies(
        fleet: Platform, spread: Spread) -> None:
    sats, pc = spread.satellites, spread.pc
    brokers = pc["brokers"]
    assert sorted(b["zone"] for b in brokers) == list(ZONES)
    assert len({b["satellite"] for b in brokers}) == 3
    for b in brokers:  # each broker runs in its satellite's namespace and advertises its address
        assert b["host"] == sats[b["satellite"]]["host"]
        assert _netns_of(b["pid"]) == _netns_of(sats[b["satellite"]]["pid"])
    rdkafka = spread.client
    topic = f"zone-loss-{uuid.uuid4().hex[:6]}"
    cli(fleet, "topic", "create", topic, "--cluster", "spread", "--partitions", "6")

    producer = SequenceProducer(rdkafka, topic, rate_per_s=300).start()
    try:
        wait_for(lambda: len(producer.acked) >= 1000, 120, "1000 acknowledged messages before the loss")
        # the whole of zone c: its satellite and every Kafka process it runs, killed -9
        lost = next(s for s in sats.values() if s["zone"] == "zone-c")
        victims = [lost["pid"], *kafka_pids(lost["name"])]
        assert len(victims) >= 3, "zone c runs a satellite, a system-cluster node and a broker"
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        wait_for(lambda: producer.acked_since(killed_at + 5) >= 1000, 180,
                 "1000 more acknowledgements with zone c gone")
        # the zone returns: `up` starts its satellite again, which restarts its nodes
        res = streamplane("up", "--detach", "--data-dir", str(fleet.data_dir), timeout=600)
        assert res.returncode == 0, res.stdout + res.stderr
        wait_for(lambda: cluster_converged(fleet, pc["id"]), 300,
                 "the cluster to be healthy again with zone c back", interval=2)
    finally:
        producer.stop()
    verify(producer, rdkafka, topic, "zone loss")
    # no node runs twice after the zone came back
    cmdlines = [" ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])]
    for b in brokers:
        config = f"/clusters/{pc['id']}/nodes/{b['id']}/server.properties"
        assert sum(config in c and "kafka.Kafka" in c for c in cmdlines) == 1, b


def test_a_satellite_cut_off_keeps_its_nodes_running_and_converges_once_healed(
        fleet: Platform, spread: Spread) -> None:
    hosts = Fleet.load(fleet.data_dir / "fleet.json")
    before = kafka_pids("sat-b")
    satellite_pid = spread.satellites["sat-b"]["pid"]
    assert len(before) == 2, "sat-b runs a system-cluster node and a broker of the cluster"
    topic = f"split-{uuid.uuid4().hex[:6]}"
    cli(fleet, "topic", "create", topic, "--cluster", "spread", "--partitions", "6")
    producer = SequenceProducer(spread.client, topic, rate_per_s=300).start()
    try:
        wait_for(lambda: len(producer.acked) >= 1000, 120, "1000 acknowledged messages before the split")
        hosts.cut("sat-b")
        cut_at = time.monotonic()
        try:
            wait_for(lambda: producer.acked_since(cut_at + 5) >= 1000, 180,
                     "1000 more acknowledgements with sat-b cut off")
            settle_until = cut_at + 30  # longer than a broker's session: Kafka fences it
            time.sleep(max(0.0, settle_until - time.monotonic()))
            assert kafka_pids("sat-b") == before, "a satellite cut off must not stop or restart its nodes"
            assert psutil.pid_exists(satellite_pid)
        finally:
            hosts.heal("sat-b")
        wait_for(lambda: cluster_converged(fleet, spread.pc["id"]), 300,
                 "the cluster to converge after the split healed", interval=2)
    finally:
        producer.stop()
    assert kafka_pids("sat-b") == before
    verify(producer, spread.client, topic, "split of sat-b")


def test_kafka_python_and_the_java_client_reach_brokers_in_every_zone(
        fleet: Platform, spread: Spread, tmp_path: Path) -> None:
    topic = f"clients-{uuid.uuid4().hex[:6]}"
    cli(fleet, "topic", "create", topic, "--cluster", "spread", "--partitions", "3")
    c = spread.client
    common = {"bootstrap_servers": c["bootstrap.servers"].split(","),
              "security_protocol": c["security.protocol"], "sasl_mechanism": c["sasl.mechanism"],
              "sasl_plain_username": c["sasl.username"], "sasl_plain_password": c["sasl.password"]}
    producer = KafkaProducer(acks="all", **common)
    for i in range(60):  # keys over every partition, so every zone's leader is written to
        producer.send(topic, key=str(i).encode(), value=f"py-{i}".encode()).get(timeout=30)
    producer.close()
    java_config = tmp_path / "client.properties"
    java_config.write_text(cli(fleet, "kafka-config", "--cluster", "spread", "--api-key",
                               c["sasl.username"], "--secret", c["sasl.password"]))
    classpath = EngineResolver().resolve(DEFAULT_KAFKA_VERSION).classpath

    def tool(main: str, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(["java", "-Xmx128m", "-cp", classpath, main, "--bootstrap-server",
                               c["bootstrap.servers"], "--command-config", str(java_config), *args],
                              input=stdin, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    tool("org.apache.kafka.tools.ConsoleProducer", "--topic", topic, stdin="j1\nj2\nj3\n")
    out = tool("org.apache.kafka.tools.consumer.ConsoleConsumer", "--topic", topic, "--from-beginning",
               "--max-messages", "63", "--group", "jvm-readers", "--timeout-ms", "60000")
    assert sorted(out.split()) == sorted([f"py-{i}" for i in range(60)] + ["j1", "j2", "j3"])
    consumer = KafkaConsumer(topic, group_id="py-readers", auto_offset_reset="earliest",
                             consumer_timeout_ms=15000, **common)
    assert len({r.value for r in consumer}) == 63
    consumer.close()


def test_hosts_talk_to_each_other_over_tls_with_the_clusters_own_ca(fleet: Platform, spread: Spread) -> None:
    """The controller and replication listeners of every node serve a certificate from the
    cluster's CA for the node's own address; another CA is not trusted."""
    doc = status_doc(fleet)
    stranger = ssl.create_default_context(cadata=CertificateAuthority.new("stranger").cert_pem)
    for cluster in doc["clusters"]:
        for b in cluster["brokers"]:
            ca = fleet.data_dir / "satellites" / b["satellite"] / "clusters" / cluster["id"] / "ca.pem"
            trusted = ssl.create_default_context(cafile=str(ca))
            for port in (b["internal_port"], b["controller_port"]):
                with socket.create_connection((b["host"], port), timeout=10) as raw, \
                        trusted.wrap_socket(raw, server_hostname=b["host"]) as tls:
                    assert tls.version() in ("TLSv1.2", "TLSv1.3")
                with socket.create_connection((b["host"], port), timeout=10) as raw, \
                        pytest.raises(ssl.SSLCertVerificationError):
                    stranger.wrap_socket(raw, server_hostname=b["host"])
