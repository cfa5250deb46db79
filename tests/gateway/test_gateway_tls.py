"""TLS on the gateway's client side: SASL_SSL clients, and certificates replaced while it runs."""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from cryptography.x509.oid import ExtendedKeyUsageOID

from streamplane.credentials.tls import TlsError, TlsSettings
from streamplane.gateway import GatewayConfig, InMemoryKeyVerifier
from streamplane.testcerts import Issuer, install, served_serial
from streamplane.testing import wait_for

from .conftest import RunningGateway, SharedCluster, Tenant, TenantFactory, running_gateway
from .test_gateway_kafka import consume

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]


# ---- the TLS gateway ---------------------------------------------------------------------


@dataclass
class TlsGateway:
    running: RunningGateway
    ca: Path
    cert: Path
    key: Path
    issuer: Issuer

    def tenant(self, tenant: Tenant) -> Tenant:
        return Tenant(tenant.cluster_id, tenant.key, tenant.secret, self.running.bootstrap)

    def addresses(self) -> list[str]:
        """The bootstrap listener and every broker listener."""
        ports = self.running.broker_ports().values()
        return [self.running.bootstrap] + [f"127.0.0.1:{p}" for p in ports]

    def serials(self) -> set[int]:
        return {served_serial(a, self.ca) for a in self.addresses()}


@pytest.fixture
def tls_gateway(cluster: SharedCluster, verifier: InMemoryKeyVerifier,
                tmp_path: Path) -> Iterator[TlsGateway]:
    issuer = Issuer.new("streamplane test CA")
    ca, cert, key = tmp_path / "ca.pem", tmp_path / "gateway.pem", tmp_path / "gateway.key"
    ca.write_bytes(issuer.pem())
    cert_pem, key_pem = issuer.issue(1001)
    install(cert, cert_pem)
    install(key, key_pem)
    config = GatewayConfig(upstream_bootstrap=(cluster.bootstrap,), recheck_interval_s=1.0,
                           tls=TlsSettings(cert_file=cert, key_file=key, reload_interval_s=0.3))
    with running_gateway(config, verifier) as running:
        yield TlsGateway(running, ca, cert, key, issuer)


def ssl_config(tenant: Tenant, ca: Path, mechanism: str = "PLAIN", **extra: Any) -> dict[str, Any]:
    return {**tenant.confluent(mechanism), "security.protocol": "SASL_SSL",
            "ssl.ca.location": str(ca), **extra}


class LiveProducer:
    """A producer that stays connected, counting its connections from librdkafka's stats."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.stats: dict[str, Any] = {}
        self.errors: list[KafkaError] = []
        self.delivered = 0
        self.producer = Producer({**config, "acks": "all", "enable.idempotence": True,
                                  "statistics.interval.ms": 200, "message.timeout.ms": 20000,
                                  "stats_cb": self._stats})

    def _stats(self, text: str) -> None:
        self.stats = json.loads(text)

    def _done(self, err: KafkaError | None, _msg: Any) -> None:
        if err is None:
            self.delivered += 1
        else:
            self.errors.append(err)

    def send(self, topic: str, values: list[str]) -> None:
        for value in values:
            self.producer.produce(topic, value.encode(), on_delivery=self._done)
        assert self.producer.flush(30) == 0

    def connects(self) -> int:
        """Connections librdkafka has made so far, to any broker (fresh stats first)."""
        seen = self.stats.get("ts")
        wait_for(lambda: self.producer.poll(0.1) >= 0 and self.stats.get("ts") != seen, 10,
                 "fresh producer statistics")
        return sum(int(b.get("connects", 0)) for b in self.stats["brokers"].values())


# ---- tests ---------------------------------------------------------------------------------


def test_sasl_ssl_clients_and_certificate_rotation(
    new_tenant: TenantFactory, tls_gateway: TlsGateway,
) -> None:
    tenant = tls_gateway.tenant(new_tenant())
    ca = tls_gateway.ca
    admin = AdminClient(ssl_config(tenant, ca))
    admin.create_topics([NewTopic("tls", 2, 1)], request_timeout=20)["tls"].result(30)
    wait_for(lambda: "tls" in admin.list_topics(timeout=5).topics, 20, "topic tls")
    assert tls_gateway.serials() == {1001}

    live = LiveProducer(ssl_config(tenant, ca, "SCRAM-SHA-512"))
    live.send("tls", [f"before-{i}" for i in range(5)])
    connects = live.connects()
    assert connects >= 1
    sessions = tls_gateway.running.connections(tenant.key)

    # same CA, new serial: the files are replaced under the running gateway
    cert_pem, key_pem = tls_gateway.issuer.issue(2002)
    install(tls_gateway.key, key_pem)
    install(tls_gateway.cert, cert_pem)
    wait_for(lambda: tls_gateway.serials() == {2002}, 10,
             "new connections to be given the new certificate")

    # the producer connected before keeps going on its old connections
    live.send("tls", [f"after-{i}" for i in range(5)])
    assert live.errors == [] and live.delivered == 10
    assert live.connects() == connects, "the open producer reconnected"
    assert tls_gateway.running.connections(tenant.key) >= sessions

    # and new clients, over TLS with the new certificate, read everything
    values = consume(ssl_config(tenant, ca), "tls", "tls-readers", 10)
    assert sorted(values) == sorted([f"before-{i}" for i in range(5)]
                                    + [f"after-{i}" for i in range(5)])
    live.producer.flush(5)


def test_a_broken_certificate_keeps_the_old_one(
    new_tenant: TenantFactory, tls_gateway: TlsGateway,
) -> None:
    tenant = tls_gateway.tenant(new_tenant())
    ca = tls_gateway.ca
    gateway = tls_gateway.running.gateway
    assert tls_gateway.serials() == {1001}
    old_key = tls_gateway.key.read_bytes()

    # a certificate whose key is not the one in the key file
    cert_pem, _ = tls_gateway.issuer.issue(3003)
    install(tls_gateway.cert, cert_pem)
    with pytest.raises(TlsError, match="does not belong to the certificate"):
        tls_gateway.running.run(gateway.reload_tls)
    assert tls_gateway.serials() == {1001}

    # an unreadable certificate file
    tls_gateway.cert.unlink()
    with pytest.raises(TlsError, match="cannot"):
        tls_gateway.running.run(gateway.reload_tls)
    install(tls_gateway.cert, b"-----BEGIN CERTIFICATE-----\nnot base64\n")
    with pytest.raises(TlsError):
        tls_gateway.running.run(gateway.reload_tls)
    assert tls_gateway.serials() == {1001}
    AdminClient(ssl_config(tenant, ca)).list_topics(timeout=10)

    # a certificate from another CA, with its key: in service at once, through the API too
    other = Issuer.new("another test CA")
    cert_pem, key_pem = other.issue(4004)
    install(tls_gateway.key, key_pem)
    install(tls_gateway.cert, cert_pem)
    info = tls_gateway.running.run(gateway.reload_tls)
    assert info.serial == 4004 and "another test CA" in info.issuer
    both = tls_gateway.ca.with_name("both.pem")
    both.write_bytes(tls_gateway.issuer.pem() + other.pem())
    assert {served_serial(a, both) for a in tls_gateway.addresses()} == {4004}
    assert AdminClient(ssl_config(tenant, both)).list_topics(timeout=10) is not None
    # clients that trust only the old CA are refused by their own verification
    with pytest.raises(ssl.SSLCertVerificationError):
        served_serial(tls_gateway.running.bootstrap, ca)
    assert old_key != key_pem


def test_plaintext_clients_are_not_served_by_a_tls_gateway(
    new_tenant: TenantFactory, tls_gateway: TlsGateway,
) -> None:
    tenant = tls_gateway.tenant(new_tenant())
    errors: list[KafkaError] = []
    admin = AdminClient({**tenant.confluent(), "error_cb": errors.append})
    with pytest.raises(Exception):  # noqa: B017 - librdkafka gives a timeout or transport error
        admin.list_topics(timeout=4)
    assert tls_gateway.running.connections(tenant.key) == 0


def test_client_certificates_when_a_ca_is_configured(
    new_tenant: TenantFactory, cluster: SharedCluster, verifier: InMemoryKeyVerifier,
    tmp_path: Path,
) -> None:
    """With ``ca_file`` set, a client needs a certificate from that CA as well as its key."""
    issuer = Issuer.new("streamplane mTLS CA")
    ca, cert, key = tmp_path / "ca.pem", tmp_path / "gateway.pem", tmp_path / "gateway.key"
    ca.write_bytes(issuer.pem())
    cert_pem, key_pem = issuer.issue(5005)
    install(cert, cert_pem)
    install(key, key_pem)
    client_cert, client_key = tmp_path / "client.pem", tmp_path / "client.key"
    client_pem, client_key_pem = issuer.issue(6006, ExtendedKeyUsageOID.CLIENT_AUTH)
    client_cert.write_bytes(client_pem)
    client_key.write_bytes(client_key_pem)
    config = GatewayConfig(upstream_bootstrap=(cluster.bootstrap,), tls=TlsSettings(
        cert_file=cert, key_file=key, ca_file=ca))
    with running_gateway(config, verifier) as running:
        tenant = Tenant(*_key_of(new_tenant()), running.bootstrap)
        with_cert = ssl_config(tenant, ca, **{"ssl.certificate.location": str(client_cert),
                                              "ssl.key.location": str(client_key)})
        assert AdminClient(with_cert).list_topics(timeout=10) is not None
        errors: list[KafkaError] = []
        without = AdminClient({**ssl_config(tenant, ca), "error_cb": errors.append})
        with pytest.raises(Exception):  # noqa: B017 - librdkafka times out after SSL errors
            without.list_topics(timeout=4)
        without.poll(0)
        assert errors, "a client without a certificate was not refused"
        # and with Python's ssl: the server ends the handshake of a client without one
        host, port = running.bootstrap.rsplit(":", 1)
        context = ssl.create_default_context(cafile=str(ca))
        try:
            with socket.create_connection((host, int(port)), timeout=5) as raw, \
                    context.wrap_socket(raw, server_hostname=host) as tls:
                answer = tls.recv(1)  # a served client would wait here (and time out)
        except ssl.SSLError:
            answer = b""
        assert answer == b""

def _key_of(tenant: Tenant) -> tuple[str, str, str]:
    return tenant.cluster_id, tenant.key, tenant.secret
