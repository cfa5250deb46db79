"""Gateway TLS settings the mothership cannot use are refused before anything starts.

TLS in service, and its rotation, are tested on the platform of test_gateway_tenants.py,
whose gateways serve TLS.
"""

from __future__ import annotations

from pathlib import Path

from streamplane.testcerts import Issuer, install

from .conftest import streamplane


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
