"""The per-cluster CA and the TLS listener configs rendered from it. No Kafka."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509

from streamplane.credentials.cluster_ca import CertificateAuthority, renew_due, serial_of
from streamplane.models.psc import ClusterTls, PhysicalClusterSpec
from streamplane.satellite.kafka.config import NodePlan, NodePorts, render_server_properties


def test_a_node_certificate_is_trusted_through_the_cluster_ca_for_its_address_only(tmp_path: Path) -> None:
    ca = CertificateAuthority.new("pkc-test")
    node = ca.issue("pkc-test node 1", "127.0.0.1")
    (tmp_path / "key.pem").write_text(node.key_pem)
    (tmp_path / "chain.pem").write_text(node.cert_pem + ca.cert_pem)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "chain.pem", tmp_path / "key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            try:
                with server.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

    threading.Thread(target=serve, daemon=True).start()
    client = ssl.create_default_context(cadata=ca.cert_pem)
    with socket.create_connection(("127.0.0.1", port)) as raw, \
            client.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        assert x509.load_der_x509_certificate(tls.getpeercert(binary_form=True) or b"").serial_number \
            == serial_of(node.cert_pem)
    other = ssl.create_default_context(cadata=CertificateAuthority.new("other").cert_pem)
    with socket.create_connection(("127.0.0.1", port)) as raw, pytest.raises(ssl.SSLCertVerificationError):
        other.wrap_socket(raw, server_hostname="127.0.0.1")
    listener.close()


def test_a_certificate_is_issued_again_for_a_new_address_ca_or_when_a_third_of_its_life_is_left() -> None:
    ca = CertificateAuthority.new("pkc-test")
    cert = ca.issue("n1", "10.0.0.11", days=90).cert_pem
    assert renew_due(cert, "10.0.0.11", ca.cert_pem) is None
    assert renew_due(cert, "10.0.0.12", ca.cert_pem) == "it was issued for another address than 10.0.0.12"
    assert renew_due(cert, "10.0.0.11", CertificateAuthority.new("pkc-test").cert_pem) == "the cluster's CA changed"
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=61)
    assert (renew_due(cert, "10.0.0.11", ca.cert_pem, now=later) or "").startswith("it expires on ")


def test_with_tls_the_controller_and_replication_listeners_speak_sasl_ssl() -> None:
    ca = CertificateAuthority.new("spread")
    psc = PhysicalClusterSpec.model_validate({
        "id": "spread", "brokers": [{"id": 1}], "super_user": {"password": "x" * 16},
        "tls": ClusterTls(ca_cert=ca.cert_pem, ca_key=ca.key_pem)})  # type: ignore[arg-type]
    plan = NodePlan(1, ("broker", "controller"), NodePorts(20001, 20002, 20003, 20004), "zone-a", None,
                    "10.0.0.11")
    text = render_server_properties(psc, plan, {1: ("10.0.0.11", 20001)}, "/data", "/node/tls")
    props = dict(line.split("=", 1) for line in text.splitlines() if not line.startswith("#"))
    assert props["listener.security.protocol.map"] == \
        "CONTROLLER:SASL_SSL,INTERNAL:SASL_SSL,EXTERNAL:SASL_PLAINTEXT"
    assert props["listener.name.internal.ssl.keystore.location"] == "/node/tls/keystore.pem"
    assert props["ssl.truststore.location"] == "/node/tls/ca.pem" and props["ssl.truststore.type"] == "PEM"
    assert "ssl.key.password" not in props  # the PEM key is not encrypted: Kafka must not be told one
    plain = render_server_properties(psc, plan, {1: ("10.0.0.11", 20001)}, "/data")
    assert "CONTROLLER:SASL_PLAINTEXT" in plain and "ssl.keystore" not in plain
    # the CA key is a secret: hidden in ordinary dumps, revealed only for the wire
    assert "PRIVATE KEY" not in psc.model_dump_json() and psc.to_wire()["tls"]["ca_key"] == ca.key_pem
    with pytest.raises(ValueError, match="PEM certificate"):
        ClusterTls(ca_cert="nonsense", ca_key="k")  # type: ignore[arg-type]
