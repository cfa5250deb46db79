"""A certificate authority per physical cluster, for the TLS between its hosts.

The mothership makes the CA when it places a cluster over several hosts; the CA travels in
the PSC (its key sealed in the store and encrypted on the channel, like the super-user's
password, which already gives whoever holds the PSC the whole cluster). Each satellite
issues the certificates of its own nodes from it, for the address the node binds (an IP
SAN, so Kafka's hostname verification holds), and writes them as the PEM files Kafka reads.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: how long a cluster's CA is valid
CA_DAYS = 3650
#: how long a node certificate is valid; a satellite issues a new one when a third is left
NODE_DAYS = 90


@dataclass(frozen=True)
class CertificateAuthority:
    cert_pem: str
    key_pem: str

    @classmethod
    def new(cls, cluster_id: str, days: int = CA_DAYS) -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Streamplane"),
                          x509.NameAttribute(NameOID.COMMON_NAME, f"{cluster_id} cluster CA")])
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=days))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True,
                    content_commitment=False, key_encipherment=False, data_encipherment=False,
                    key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        return cls(_cert_pem(cert), _key_pem(key))

    def issue(self, common_name: str, address: str, days: int = NODE_DAYS) -> NodeCertificate:
        """A server-and-client certificate for ``address`` (an IP), with a new key."""
        ca_cert = x509.load_pem_x509_certificate(self.cert_pem.encode())
        ca_key = serialization.load_pem_private_key(self.key_pem.encode(), password=None)
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
            raise ValueError("the cluster CA key is not an EC key")
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
                .issuer_name(ca_cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc))
                .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
                               critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        return NodeCertificate(_cert_pem(cert), _key_pem(key))


@dataclass(frozen=True)
class NodeCertificate:
    cert_pem: str
    key_pem: str

    def keystore_pem(self, ca_cert_pem: str) -> str:
        """What Kafka reads as a PEM keystore: the private key (PKCS#8), then the chain."""
        return self.key_pem + self.cert_pem + ca_cert_pem


def renew_due(cert_pem: str, address: str, ca_cert_pem: str, now: dt.datetime | None = None) -> str | None:
    """Why a node certificate must be issued again (None while it is good): it was issued
    for another address or by another CA, or less than a third of its life is left."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    ca = x509.load_pem_x509_certificate(ca_cert_pem.encode())
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return "the cluster's CA changed"
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return "it names no address"
    if ipaddress.ip_address(address) not in sans.get_values_for_type(x509.IPAddress):
        return f"it was issued for another address than {address}"
    now = now or dt.datetime.now(dt.UTC)
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    if cert.not_valid_after_utc - now < life / 3:
        return f"it expires on {cert.not_valid_after_utc:%Y-%m-%d}"
    return None


def serial_of(cert_pem: str) -> int:
    return x509.load_pem_x509_certificate(cert_pem.encode()).serial_number


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()
