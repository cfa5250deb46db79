"""The gateways a mothership runs serve TLS when it is given a certificate, and rotate it
without a restart: ``kafka-config`` tells tenants to use SASL_SSL, ``gateway list`` shows
the certificate in service and ``gateway reload-tls`` (or replacing the files) puts a new
one in service while open connections carry on.

Its own platform (on SQLite), since the session platform's gateways run without TLS.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from streamplane.mothership.gateways import GatewayFiles, gateways_dir
from streamplane.mothership.server import MothershipLayout
from streamplane.testcerts import Issuer, install, served_serial
from streamplane.testing import wait_for

from .conftest import Platform, cli, running_platform, streamplane
from .test_gateway_tenants import Tenant, consume, new_tenant

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]


def test_broken_gateway_tls_settings_are_refused_before_anything_starts(tmp_path: Path) -> None:
    issuer = Issuer.new("streamplane test CA")
    cert_pem, key_pem = issuer.issue(11)
    cert, key = tmp_path / "gw.crt", tmp_path / "gw.key"
    install(cert, cert_pem)
    install(key, key_pem)
    data = tmp_path / "data"

    res = streamplane("mothership", "run", "--data-dir", str(data), "--gateway-tls-cert", str(cert))
    assert res.returncode == 2 and "give both --gateway-tls-cert and --gateway-tls-key" in res.stderr

    _, other_key = issuer.issue(12)
    wrong = tmp_path / "other.key"
    install(wrong, other_key)
    res = streamplane("mothership", "run", "--data-dir", str(data),
                      "--gateway-tls-cert", str(cert), "--gateway-tls-key", str(wrong))
    assert res.returncode == 1
    assert "the gateway TLS files do not work" in res.stderr and "does not belong to the certificate" in res.stderr
    assert not data.exists() or not any(data.iterdir()), "something was started or written"


class TlsPlatform:
    def __init__(self, platform: Platform, issuer: Issuer, ca: Path, cert: Path, key: Path) -> None:
        self.platform, self.issuer, self.ca, self.cert, self.key = platform, issuer, ca, cert, key

    def gateways(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = json.loads(cli(self.platform, "gateway", "list", "-o", "json"))
        return out

    def files(self, pc_id: str) -> GatewayFiles:
        return GatewayFiles(gateways_dir(MothershipLayout(self.platform.data_dir).root) / pc_id)


@pytest.fixture(scope="module")
def tls_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsPlatform]:
    certs = tmp_path_factory.mktemp("gw-certs")
    issuer = Issuer.new("streamplane test CA")
    ca, cert, key = certs / "ca.pem", certs / "gateway.crt", certs / "gateway.key"
    install(ca, issuer.pem())
    cert_pem, key_pem = issuer.issue(0x1001)
    install(cert, cert_pem)
    install(key, key_pem)
    env = {"STREAMPLANE_GATEWAY_TLS_CERT": str(cert), "STREAMPLANE_GATEWAY_TLS_KEY": str(key)}
    with running_platform(tmp_path_factory.mktemp("gw-tls-platform"), shared_db=False, env=env) as platform:
        yield TlsPlatform(platform, issuer, ca, cert, key)


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


def test_tenants_use_sasl_ssl_and_the_certificate_rotates_without_a_restart(tls_platform: TlsPlatform) -> None:
    tenant: Tenant = new_tenant(tls_platform.platform, "tls-shop")
    assert tenant.cluster["security_protocol"] == "SASL_SSL"
    assert tenant.props["security.protocol"] == "SASL_SSL"
    bootstrap = tenant.props["bootstrap.servers"]
    config = tenant.confluent(**{"ssl.ca.location": str(tls_platform.ca)})

    [gw] = tls_platform.gateways()
    assert gw["bootstrap"] == bootstrap and gw["security_protocol"] == "SASL_SSL"
    assert gw["certificate"]["serial"] == "1001"
    assert served_serial(bootstrap, tls_platform.ca) == 0x1001
    gateway_pid = json.loads(tls_platform.files(gw["physical_cluster"]).state_file.read_text())["pid"]

    admin = AdminClient(config)
    admin.create_topics([NewTopic("orders", 3, 3)], operation_timeout=20)["orders"].result(40)
    wait_for(lambda: "orders" in admin.list_topics(timeout=5).topics, 30, "topic orders to show")
    live = LiveProducer(config)
    live.send("orders", [f"before-{i}" for i in range(10)])
    connects = live.connects()

    # the files are replaced (same CA, new serial), then the operator asks for a reload
    cert_pem, key_pem = tls_platform.issuer.issue(0x2002)
    install(tls_platform.key, key_pem)
    install(tls_platform.cert, cert_pem)
    said = cli(tls_platform.platform, "gateway", "reload-tls")
    assert "asked 1 gateway(s)" in said
    wait_for(lambda: served_serial(bootstrap, tls_platform.ca) == 0x2002, 20,
             "new connections to get the new certificate")
    wait_for(lambda: tls_platform.gateways()[0]["certificate"]["serial"] == "2002", 20,
             "gateway list to show the new certificate")
    log = tls_platform.files(gw["physical_cluster"]).log_file.read_text()
    assert re.search(r"TLS reload asked for \(SIGHUP\)", log), "the reload request did not reach the gateway"

    # no restart: same gateway process, and the open producer kept its connections
    assert json.loads(tls_platform.files(gw["physical_cluster"]).state_file.read_text())["pid"] == gateway_pid
    live.send("orders", [f"after-{i}" for i in range(10)])
    assert live.connects() == connects, "the open producer had to reconnect"
    values = consume(config, "orders", "tls-readers", 20)
    assert sorted(values) == sorted([f"before-{i}" for i in range(10)] + [f"after-{i}" for i in range(10)])

    # a plain-text client is not served
    plain = {**config, "security.protocol": "SASL_PLAINTEXT"}
    errors: list[KafkaError] = []
    probe = Producer({**plain, "error_cb": errors.append, "socket.timeout.ms": 3000})
    wait_for(lambda: probe.poll(0.2) >= 0 and bool(errors), 30, "the plain-text client to fail")
    assert probe.flush(0) == 0
