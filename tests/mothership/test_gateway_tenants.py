"""Basic clusters as a user meets them: through the mothership's gateway, end to end.

Two basic clusters share one physical cluster. Their clients use the printed
``kafka-config`` (confluent-kafka with SCRAM-SHA-512, kafka-python with PLAIN) and reach
the gateway, never a broker, over TLS (the mothership is given a gateway certificate);
upstream each tenant is its own Kafka user with PREFIXED ACLs. The certificate is
rotated without a restart: ``gateway reload-tls`` (or replacing the files) puts a new one
in service while open connections carry on. The tests run in order on one platform of
their own (on SQLite, with TLS), because the last one takes it down.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer

from streamplane.kafka import ClusterAdmin
from streamplane.kafka.acls import client_access
from streamplane.mothership.gateways import GATEWAY_MODULE, GatewayFiles, gateways_dir
from streamplane.mothership.server import MothershipLayout
from streamplane.mothership.store import (
    NotFoundError,
    PhysicalCluster,
    PhysicalClusterKind,
    Store,
    TenantPrincipal,
)
from streamplane.tenancy import tenant_prefix
from streamplane.testcerts import Issuer, install, served_serial
from streamplane.testing import SequenceProducer, consume_sequences, wait_for

from .conftest import Platform, cli, parse_properties, running_platform, streamplane

# the module's platform makes two tenants before the first test: on a loaded machine that
# alone can take minutes, so the first test's setup gets more than the default 300 s
pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]

QUIET = logging.getLogger("streamplane.tests.quiet")
CREATE_TIMEOUT_S = 240.0


@dataclass
class Tenant:
    cluster: dict[str, Any]
    key: str
    secret: str = field(repr=False)
    props: dict[str, str] = field(repr=False)
    #: the CA that signed the gateway's certificate, when it serves TLS
    ca: Path | None = None

    @property
    def id(self) -> str:
        return str(self.cluster["id"])

    @property
    def name(self) -> str:
        return str(self.cluster["name"])

    @property
    def prefix(self) -> str:
        return tenant_prefix(self.id)

    def confluent(self, mechanism: str = "SCRAM-SHA-512", **extra: Any) -> dict[str, Any]:
        """The printed settings, as librdkafka takes them."""
        tls = {"ssl.ca.location": str(self.ca)} if self.ca else {}
        return {**{k: v for k, v in self.props.items() if k != "sasl.jaas.config"},
                "sasl.mechanism": mechanism, "logger": QUIET, **tls, **extra}

    def kafka_python(self) -> dict[str, Any]:
        tls = {"ssl_cafile": str(self.ca)} if self.ca else {}
        return {"bootstrap_servers": self.props["bootstrap.servers"].split(","),
                "security_protocol": self.props["security.protocol"], "sasl_mechanism": "PLAIN",
                "sasl_plain_username": self.key, "sasl_plain_password": self.secret, **tls}


@dataclass
class GatewayTls:
    """The CA and the certificate files the mothership hands its gateways."""

    issuer: Issuer
    ca: Path
    cert: Path
    key: Path

    @classmethod
    def create(cls, where: Path, serial: int) -> GatewayTls:
        issuer = Issuer.new("streamplane test CA")
        tls = cls(issuer, where / "ca.pem", where / "gateway.crt", where / "gateway.key")
        install(tls.ca, issuer.pem())
        tls.rotate(serial)
        return tls

    def rotate(self, serial: int) -> None:
        """New files in place (same CA, new serial), key first."""
        cert_pem, key_pem = self.issuer.issue(serial)
        install(self.key, key_pem)
        install(self.cert, cert_pem)

    def env(self) -> dict[str, str]:
        return {"STREAMPLANE_GATEWAY_TLS_CERT": str(self.cert), "STREAMPLANE_GATEWAY_TLS_KEY": str(self.key)}


@dataclass
class World:
    platform: Platform
    tls: GatewayTls
    a: Tenant
    b: Tenant

    @property
    def mothership_root(self) -> Path:
        return MothershipLayout(self.platform.data_dir).root

    def store(self) -> Store:
        return Store.in_data_dir(self.mothership_root)  # the platform below runs on SQLite

    def shared(self) -> PhysicalCluster:
        with self.store() as store:
            [pc] = [p for p in store.physical_clusters.list() if p.kind == PhysicalClusterKind.SHARED]
        return pc

    def super_admin(self) -> ClusterAdmin:
        """An admin on the shared physical cluster, as its super-user, past the gateway."""
        pc = self.shared()
        assert pc.observed_status is not None and pc.observed_status.bootstrap
        su = pc.spec.super_user
        return ClusterAdmin(pc.observed_status.bootstrap, su.name, su.password.get_secret_value())

    def gateway(self, pc_id: str) -> GatewayFiles:
        return GatewayFiles(gateways_dir(self.mothership_root) / pc_id)


def gateway_state(files: GatewayFiles) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(files.state_file.read_text())
    except (OSError, ValueError):
        return {}
    return data


def gateway_processes(data_dir: Path) -> list[int]:
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        cmd = proc.info["cmdline"] or []
        if proc.info["status"] != psutil.STATUS_ZOMBIE and GATEWAY_MODULE in cmd \
                and any(str(data_dir) in part for part in cmd):
            found.append(proc.info["pid"])
    return found


def new_tenant(platform: Platform, name: str, ca: Path | None = None) -> Tenant:
    cluster = json.loads(cli(platform, "cluster", "create", name, "--type", "basic", "--wait",
                             "--timeout", str(CREATE_TIMEOUT_S), "-o", "json"))
    assert cluster["status"] == "RUNNING" and cluster["bootstrap"], cluster
    key = json.loads(cli(platform, "api-key", "create", "--cluster", name, "-o", "json"))
    props = parse_properties(cli(platform, "kafka-config", "--cluster", name,
                                 "--api-key", key["key"], "--secret", key["secret"]))
    return Tenant(cluster, key["key"], key["secret"], props, ca)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tls = GatewayTls.create(tmp_path_factory.mktemp("gw-certs"), 0x1001)
    # the session platform owns the test PostgreSQL database; this one runs on SQLite
    with running_platform(tmp_path_factory.mktemp("gw-platform"), shared_db=False, env=tls.env()) as platform:
        yield World(platform, tls, new_tenant(platform, "shop-a", tls.ca), new_tenant(platform, "shop-b", tls.ca))


def create_topic(tenant: Tenant, name: str, partitions: int) -> None:
    admin = AdminClient(tenant.confluent())  # alive until the answer came
    admin.create_topics([NewTopic(name, partitions, 3)], operation_timeout=20)[name].result(40)
    wait_for(lambda: name in admin.list_topics(timeout=5).topics, 30, f"topic {name} to show")


def produce(config: dict[str, Any], topic: str, values: list[str]) -> None:
    producer = Producer({**config, "acks": "all", "enable.idempotence": True,
                         "message.timeout.ms": 30000})
    failed: list[KafkaError] = []
    for v in values:
        producer.produce(topic, v.encode(),
                         on_delivery=lambda err, _m: failed.append(err) if err else None)
    assert producer.flush(40) == 0 and failed == []


def consume(config: dict[str, Any], topic: str, group: str, expect: int, until: str | None = None) -> list[str]:
    """Read from the earliest offset until ``expect`` values (or ``until`` among them)."""
    consumer = Consumer({**config, "group.id": group, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    values: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while (len(values) < expect if until is None else until not in values) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                values.append(msg.value().decode())
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return values


def auth_refused(config: dict[str, Any], timeout: float) -> float:
    """Seconds until a new connection with ``config`` is refused at login."""
    start = time.monotonic()
    errors: list[KafkaError] = []
    probe = Producer({**config, "error_cb": errors.append})

    def refused() -> bool:
        probe.poll(0.2)
        return any(e.code() == KafkaError._AUTHENTICATION for e in errors)

    wait_for(refused, timeout, "the login to be refused")
    return time.monotonic() - start


# ---- the tests, in order ------------------------------------------------------------------


def test_each_tenant_has_its_own_cluster_behind_the_gateway(world: World) -> None:
    a, b = world.a, world.b
    state = gateway_state(world.gateway(world.shared().id))
    # clients get the gateway's address, never a broker's
    assert a.cluster["bootstrap"] == b.cluster["bootstrap"] == state["bootstrap"]
    assert a.props["bootstrap.servers"] == state["bootstrap"]
    assert a.cluster["security_protocol"] == a.props["security.protocol"] == "SASL_SSL"
    assert a.props["sasl.username"] == a.key and a.props["sasl.password"] == a.secret
    described = json.loads(cli(world.platform, "cluster", "describe", a.name, "-o", "json"))
    assert described["bootstrap"] == state["bootstrap"]

    # the same topic name in both, through the gateway: confluent-kafka/SCRAM for a,
    # kafka-python/PLAIN for b
    for tenant in (a, b):
        create_topic(tenant, "orders", 2)
    produce(a.confluent(), "orders", ["a1", "a2", "a3"])
    kp = KafkaProducer(acks="all", **b.kafka_python())
    for v in ("b1", "b2"):
        kp.send("orders", v.encode()).get(timeout=30)
    kp.close()
    assert sorted(consume(a.confluent(), "orders", "app", 3)) == ["a1", "a2", "a3"]
    kc = KafkaConsumer("orders", group_id="app", auto_offset_reset="earliest",
                       consumer_timeout_ms=10000, **b.kafka_python())
    assert sorted(r.value.decode() for r in kc) == ["b1", "b2"]
    kc.close()
    for tenant in (a, b):
        topics = set(AdminClient(tenant.confluent("SCRAM-SHA-256")).list_topics(timeout=10).topics)
        assert topics == {"orders"}, f"{tenant.name} sees {topics}"

    # upstream: one Kafka user per tenant, allowed exactly its prefix; API keys are not users
    with world.super_admin() as admin:
        users = admin.scram_users()
        assert a.id in users and b.id in users
        assert a.key not in users and b.key not in users
        for tenant in (a, b):
            granted = admin.acls_for(tenant.id)
            assert set(granted) == set(client_access(tenant.id, tenant.prefix))
            assert {(e.pattern_type, e.resource_name) for e in granted} == {("PREFIXED", tenant.prefix)}
        assert {t.name for t in admin.list_topics(prefix="lkc-")} == {a.prefix + "orders",
                                                                     b.prefix + "orders"}
        assert {a.prefix + "app", b.prefix + "app"} <= set(admin.list_groups(prefix="lkc-"))


def test_a_killed_gateway_comes_back_on_its_address(world: World) -> None:
    a = world.a
    files = world.gateway(world.shared().id)
    before = gateway_state(files)
    create_topic(a, "seq", 3)
    producer = SequenceProducer(a.confluent(), "seq", rate_per_s=100).start()
    try:
        wait_for(lambda: len(producer.acked) >= 100, 60, "acks through the gateway")
        os.kill(before["pid"], signal.SIGKILL)
        killed_at = time.monotonic()
        after = wait_for(lambda: (s := gateway_state(files)).get("pid") not in (None, before["pid"])
                         and s, 60, "a new gateway process")
        assert after["bootstrap"] == before["bootstrap"]
        wait_for(lambda: producer.acked_since(time.monotonic() - 1) > 0
                 and producer.acked_since(killed_at) > 100, 90,
                 "the producer to get acks from the restarted gateway")
    finally:
        producer.stop()
    assert producer.errors == []
    seen = consume_sequences(a.confluent(), "seq", len(producer.acked), 90)
    assert producer.acked <= set(seen)
    cluster = world.platform.cluster(a.name)
    assert cluster is not None and cluster["bootstrap"] == before["bootstrap"]


def test_a_restarted_mothership_adopts_the_running_gateway(world: World) -> None:
    pc_id = world.shared().id
    files = world.gateway(pc_id)
    gateway_pid = gateway_state(files)["pid"]
    layout = MothershipLayout(world.platform.data_dir)
    mothership_pid = layout.pid()
    assert mothership_pid is not None
    os.kill(mothership_pid, signal.SIGKILL)
    wait_for(lambda: layout.pid() is None, 30, "the mothership to die")
    assert psutil.pid_exists(gateway_pid)  # the data plane does not need the control plane
    produce(world.b.confluent(), "orders", ["while the mothership is down"])

    # started without the certificate flags: the data dir remembers them, so the gateway
    # keeps serving TLS and is adopted as it is, not restarted plain under its SASL_SSL clients
    assert "STREAMPLANE_GATEWAY_TLS_CERT" not in os.environ
    res = streamplane("up", "--detach", "--data-dir", str(world.platform.data_dir))
    assert res.returncode == 0, res.stdout + res.stderr
    wait_for(lambda: f"adopted the gateway of {pc_id} (pid {gateway_pid})"
             in layout.log_file.read_text(), 60, "the new mothership to adopt the gateway")
    assert f"gateways keep serving TLS with {world.tls.cert}" in layout.log_file.read_text()
    time.sleep(3)  # a few supervision cycles: it must not start a second one
    assert gateway_processes(world.platform.data_dir) == [gateway_pid]
    produce(world.b.confluent(), "orders", ["after the mothership restarted without the TLS flags"])


def test_a_revoked_key_is_refused_within_5_s(world: World) -> None:
    b = world.b
    spare = json.loads(cli(world.platform, "api-key", "create", "--cluster", b.name, "-o", "json"))
    tenant = Tenant(b.cluster, spare["key"], spare["secret"],
                    {**b.props, "sasl.username": spare["key"], "sasl.password": spare["secret"]}, b.ca)
    produce(tenant.confluent(), "orders", ["from the spare key"])
    cli(world.platform, "api-key", "revoke", spare["key"])
    revoked_at = time.monotonic()
    for mechanism in ("SCRAM-SHA-512", "PLAIN"):
        auth_refused(tenant.confluent(mechanism), 10)
    assert time.monotonic() - revoked_at < 5
    produce(b.confluent(), "orders", ["the other key still works"])


def test_deleting_a_cluster_removes_its_user_acls_topics_and_groups(world: World) -> None:
    a, b = world.a, world.b
    cli(world.platform, "cluster", "delete", a.name, "--wait", "--timeout", "120")
    with world.super_admin() as admin:
        assert a.id not in admin.scram_users()
        assert admin.acls_for(a.id) == []
        assert admin.list_topics(prefix=a.prefix) == []
        assert admin.list_groups(prefix=a.prefix) == []
        # the other tenant is untouched
        assert b.id in admin.scram_users() and admin.acls_for(b.id)
        assert {t.name for t in admin.list_topics(prefix=b.prefix)} == {b.prefix + "orders"}
        assert b.prefix + "app" in admin.list_groups(prefix=b.prefix)
    auth_refused(a.confluent(), 10)
    produce(b.confluent(), "orders", ["after a left"])
    assert "after a left" in consume(b.confluent(), "orders", "late", 0, until="after a left")
    with world.store() as store:
        assert [p.username for p in _principals(store, (a.id, b.id))] == [b.id]


def _principals(store: Store, ids: tuple[str, ...]) -> list[TenantPrincipal]:
    found = []
    for lc_id in ids:
        try:
            found.append(store.tenant_principals.get(lc_id))
        except NotFoundError:
            continue
    return found


class LiveProducer:
    """An idempotent producer that stays connected; counts librdkafka's connections."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.stats: dict[str, Any] = {}
        self.failed: list[KafkaError] = []
        self.producer = Producer({**config, "acks": "all", "enable.idempotence": True,
                                  "statistics.interval.ms": 200, "message.timeout.ms": 30000,
                                  "stats_cb": lambda text: self.stats.update(json.loads(text))})

    def send(self, topic: str, values: list[str]) -> None:
        for v in values:
            self.producer.produce(topic, v.encode(),
                                  on_delivery=lambda err, _m: self.failed.append(err) if err else None)
        assert self.producer.flush(40) == 0 and self.failed == []

    def connects(self) -> int:
        seen = self.stats.get("ts")
        wait_for(lambda: self.producer.poll(0.1) >= 0 and self.stats.get("ts") != seen, 10,
                 "fresh producer statistics")
        return sum(int(b.get("connects", 0)) for b in self.stats["brokers"].values())


def gateways(platform: Platform) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = json.loads(cli(platform, "gateway", "list", "-o", "json"))
    return out


def test_the_certificate_rotates_without_a_restart_or_a_dropped_connection(world: World) -> None:
    b, tls = world.b, world.tls
    bootstrap = b.props["bootstrap.servers"]
    config = b.confluent()
    [gw] = gateways(world.platform)
    assert gw["bootstrap"] == bootstrap and gw["security_protocol"] == "SASL_SSL"
    assert gw["certificate"]["serial"] == "1001"
    assert served_serial(bootstrap, tls.ca) == 0x1001
    files = world.gateway(gw["physical_cluster"])
    gateway_pid = gateway_state(files)["pid"]

    create_topic(b, "rotation", 3)
    live = LiveProducer(config)
    live.send("rotation", [f"before-{i}" for i in range(10)])
    connects = live.connects()

    # the files are replaced (same CA, new serial), then the operator asks for a reload
    tls.rotate(0x2002)
    said = cli(world.platform, "gateway", "reload-tls")
    assert "asked 1 gateway(s)" in said
    wait_for(lambda: served_serial(bootstrap, tls.ca) == 0x2002, 20,
             "new connections to get the new certificate")
    wait_for(lambda: gateways(world.platform)[0]["certificate"]["serial"] == "2002", 20,
             "gateway list to show the new certificate")
    assert re.search(r"TLS reload asked for \(SIGHUP\)", files.log_file.read_text()), \
        "the reload request did not reach the gateway"

    # no restart: same gateway process, and the open producer kept its connections
    assert gateway_state(files)["pid"] == gateway_pid
    live.send("rotation", [f"after-{i}" for i in range(10)])
    assert live.connects() == connects, "the open producer had to reconnect"
    values = consume(config, "rotation", "tls-readers", 20)
    assert sorted(values) == sorted([f"before-{i}" for i in range(10)] + [f"after-{i}" for i in range(10)])

    # a plain-text client is not served
    errors: list[KafkaError] = []
    probe = Producer({**config, "security.protocol": "SASL_PLAINTEXT", "error_cb": errors.append,
                      "socket.timeout.ms": 3000})
    wait_for(lambda: probe.poll(0.2) >= 0 and bool(errors), 30, "the plain-text client to fail")
    assert probe.flush(0) == 0


def test_down_leaves_no_gateway_behind(world: World) -> None:
    data_dir = world.platform.data_dir
    assert len(gateway_processes(data_dir)) == 1
    res = streamplane("down", "--data-dir", str(data_dir))
    assert res.returncode == 0, res.stdout + res.stderr
    assert gateway_processes(data_dir) == []
