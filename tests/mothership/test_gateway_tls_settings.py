"""Gateway TLS settings the mothership cannot use are refused before anything starts.

TLS in service, and its rotation, are tested on the platform of test_gateway_tenants.py,
whose gateways serve TLS.
"""

from __future__ import annotations

from pathlib import Path

from streamplane.credentials.tls import TlsSettings
from streamplane.mothership.server import MothershipLayout
from streamplane.testcerts import Issuer, install

from .conftest import streamplane


def _gateway_certificate(tmp_path: Path) -> tuple[Issuer, Path, Path]:
    """A CA, and a certificate it issued with its key, in files."""
    issuer = Issuer.new("streamplane test CA")
    cert_pem, key_pem = issuer.issue(11)
    cert, key = tmp_path / "gw.crt", tmp_path / "gw.key"
    install(cert, cert_pem)
    install(key, key_pem)
    return issuer, cert, key


def test_broken_gateway_tls_settings_are_refused_before_anything_starts(tmp_path: Path) -> None:
    issuer, cert, _ = _gateway_certificate(tmp_path)
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


def test_recorded_gateway_tls_is_kept_and_refused_once_its_files_are_gone(tmp_path: Path) -> None:
    _, cert, key = _gateway_certificate(tmp_path)
    layout = MothershipLayout(tmp_path / "data")
    assert layout.recorded_gateway_tls() is None  # nothing given yet: plain

    tls = TlsSettings(cert_file=cert, key_file=key)
    layout.record_gateway_tls(tls)  # what a mothership run with the flags leaves behind
    assert layout.recorded_gateway_tls() == tls

    cert.unlink()  # a restart without the flags now cannot serve what the tenants expect
    res = streamplane("mothership", "run", "--data-dir", str(layout.data_dir))
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"the gateways served TLS with {cert}" in res.stderr and "--gateway-plain" in res.stderr
    assert layout.pid() is None and not layout.log_file.exists(), "the mothership started anyway"
    assert layout.recorded_gateway_tls() == tls, "a refused start changed the recorded setting"

    res = streamplane("mothership", "run", "--data-dir", str(layout.data_dir), "--gateway-plain",
                      "--gateway-tls-cert", str(key), "--gateway-tls-key", str(key))
    assert res.returncode == 2 and "--gateway-plain turns gateway TLS off" in res.stderr

    layout.gateway_tls_file.write_text("{not json")
    res = streamplane("mothership", "run", "--data-dir", str(layout.data_dir))
    assert res.returncode == 1 and f"cannot read {layout.gateway_tls_file}" in res.stderr, res.stderr

    layout.record_gateway_tls(None)
    assert not layout.gateway_tls_file.exists() and layout.recorded_gateway_tls() is None
