"""SCRAM (RFC 5802, with SHA-256 and SHA-512 as in RFC 7677 and Kafka's KIP-84).

The server side lets clients log in to the gateway with an API key; the client side logs
the gateway in to the physical cluster as the tenant's own Kafka principal. Built only on
hashlib and hmac. Like Kafka, passwords are used as UTF-8 without SASLprep, and channel
binding is not supported ("n,," / "y,," GS2 headers only).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MECHANISMS: dict[str, str] = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
#: Kafka refuses fewer; we use its default for credentials the gateway derives itself
MIN_ITERATIONS = 4096
DEFAULT_ITERATIONS = 4096


class ScramError(Exception):
    """The exchange failed; the message is safe to show the client."""


def _digest(mechanism: str) -> str:
    try:
        return MECHANISMS[mechanism]
    except KeyError:
        raise ScramError(f"unsupported SCRAM mechanism {mechanism}") from None


def _hmac(algo: str, key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, algo).digest()


def _h(algo: str, data: bytes) -> bytes:
    return hashlib.new(algo, data).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def salted_password(mechanism: str, password: str, salt: bytes, iterations: int) -> bytes:
    """Hi() of RFC 5802: PBKDF2 with the mechanism's HMAC. CPU-heavy: call it off the loop."""
    algo = _digest(mechanism)
    return hashlib.pbkdf2_hmac(algo, password.encode("utf-8"), salt, iterations)


@dataclass(frozen=True)
class ScramCredential:
    """What a server stores for one user and mechanism: no password, only its hashes."""

    mechanism: str
    salt: bytes
    iterations: int
    stored_key: bytes = field(repr=False)
    server_key: bytes = field(repr=False)

    @classmethod
    def derive(cls, mechanism: str, password: str, *, salt: bytes | None = None,
               iterations: int = DEFAULT_ITERATIONS) -> ScramCredential:
        algo = _digest(mechanism)
        if iterations < MIN_ITERATIONS:
            raise ValueError(f"SCRAM needs at least {MIN_ITERATIONS} iterations, not {iterations}")
        salt = salt if salt is not None else secrets.token_bytes(24)
        salted = salted_password(mechanism, password, salt, iterations)
        return cls(mechanism, salt, iterations,
                   stored_key=_h(algo, _hmac(algo, salted, b"Client Key")),
                   server_key=_hmac(algo, salted, b"Server Key"))


def _escape(name: str) -> str:
    return name.replace("=", "=3D").replace(",", "=2C")


def _unescape(name: str) -> str:
    if "=" in name.replace("=3D", "").replace("=2C", ""):
        raise ScramError("invalid user name encoding")
    return name.replace("=2C", ",").replace("=3D", "=")


def _attributes(message: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for part in message.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise ScramError(f"malformed SCRAM message part {part[:16]!r}")
        attrs.setdefault(key, value)
    return attrs


@dataclass
class ClientFirst:
    gs2_header: str
    bare: str
    user: str
    nonce: str
    extensions: dict[str, str]


def parse_client_first(token: bytes) -> ClientFirst:
    try:
        text = token.decode("utf-8")
    except UnicodeDecodeError:
        raise ScramError("the SCRAM message is not UTF-8") from None
    parts = text.split(",", 2)
    if len(parts) != 3:
        raise ScramError("malformed client-first message")
    cbind, authzid, bare = parts
    if cbind == "p" or cbind.startswith("p="):
        raise ScramError("channel binding is not supported")
    if cbind not in ("n", "y"):
        raise ScramError("malformed GS2 header")
    attrs = _attributes(bare)
    if "m" in attrs:
        raise ScramError("mandatory SCRAM extensions are not supported")
    if "n" not in attrs or "r" not in attrs:
        raise ScramError("the client-first message needs a user name and a nonce")
    user = _unescape(attrs["n"])
    if authzid and _unescape(authzid.removeprefix("a=")) != user:
        raise ScramError("authorization id must be empty or the user name")
    extensions = {k: v for k, v in attrs.items() if len(k) > 1}
    return ClientFirst(f"{cbind},{authzid},", bare, user, attrs["r"], extensions)


#: ``lookup(user)`` -> the user's credential, or None for an unknown user
CredentialLookup = Callable[[str], Any]


class ScramServer:
    """The server side of one exchange: ``first()`` then ``final()``.

    An unknown user gets a made-up salt and fails only at the proof, so an attacker cannot
    tell which API keys exist.
    """

    def __init__(self, mechanism: str, decoy_secret: bytes) -> None:
        self.mechanism = mechanism
        self._algo = _digest(mechanism)
        self._decoy_secret = decoy_secret
        self._client_first: ClientFirst | None = None
        self._server_first = ""
        self._nonce = ""
        self._credential: ScramCredential | None = None

    @property
    def user(self) -> str:
        if self._client_first is None:
            raise ScramError("no client-first message yet")
        return self._client_first.user

    def parse_first(self, token: bytes) -> ClientFirst:
        first = parse_client_first(token)
        if first.extensions.get("tokenauth", "false").lower() == "true":
            raise ScramError("delegation tokens are not supported")
        self._client_first = first
        return first

    def first(self, credential: ScramCredential | None) -> bytes:
        """The server-first message, for the credential of the user (None: unknown user)."""
        if self._client_first is None:
            raise ScramError("no client-first message yet")
        if credential is not None and credential.mechanism != self.mechanism:
            credential = None
        self._credential = credential
        salt, iterations = ((credential.salt, credential.iterations) if credential is not None
                            else (self._decoy_salt(self._client_first.user), DEFAULT_ITERATIONS))
        self._nonce = self._client_first.nonce + secrets.token_urlsafe(24)
        self._server_first = (f"r={self._nonce},s={base64.b64encode(salt).decode()},"
                              f"i={iterations}")
        return self._server_first.encode()

    def final(self, token: bytes) -> bytes:
        """Check the client's proof; the server-final message, or ScramError."""
        if self._client_first is None or not self._server_first:
            raise ScramError("the SCRAM exchange is out of order")
        text = token.decode("utf-8", "replace")
        without_proof, sep, proof_part = text.rpartition(",p=")
        if not sep:
            raise ScramError("the client-final message has no proof")
        attrs = _attributes(without_proof)
        expected_cbind = base64.b64encode(self._client_first.gs2_header.encode()).decode()
        if attrs.get("c") != expected_cbind:
            raise ScramError("channel binding data mismatch")
        # Kafka accepts a nonce that ends with its own: older librdkafka (2.0, under
        # Debian's kcat) sends the client nonce twice; the server's part is what matters
        if not attrs.get("r", "").endswith(self._nonce):
            raise ScramError("nonce mismatch")
        try:
            proof = base64.b64decode(proof_part, validate=True)
        except ValueError:
            raise ScramError("malformed proof") from None
        auth_message = f"{self._client_first.bare},{self._server_first},{without_proof}".encode()
        credential = self._credential
        if credential is None:
            raise ScramError("invalid credentials")
        signature = _hmac(self._algo, credential.stored_key, auth_message)
        if len(proof) != len(signature):
            raise ScramError("invalid credentials")
        client_key = _xor(proof, signature)
        if not hmac.compare_digest(_h(self._algo, client_key), credential.stored_key):
            raise ScramError("invalid credentials")
        server_signature = _hmac(self._algo, credential.server_key, auth_message)
        return b"v=" + base64.b64encode(server_signature)

    def _decoy_salt(self, user: str) -> bytes:
        return _hmac("sha256", self._decoy_secret, user.encode())[:24]


class ScramClient:
    """The client side of one exchange: ``first()``, ``final(server_first)``, ``verify()``.

    ``salted`` computes Hi(); pass a cached version to avoid redoing PBKDF2 for every
    connection.
    """

    def __init__(self, mechanism: str, user: str, password: str,
                 salted: Callable[[str, str, bytes, int], bytes] = salted_password) -> None:
        self.mechanism = mechanism
        self._algo = _digest(mechanism)
        self._user = user
        self._password = password
        self._salted = salted
        self._nonce = secrets.token_urlsafe(24)
        self._bare = f"n={_escape(user)},r={self._nonce}"
        self._auth_message = b""
        self._salted_password = b""
        self.server_params: tuple[bytes, int] | None = None

    def first(self) -> bytes:
        return f"n,,{self._bare}".encode()

    def parse_server_first(self, token: bytes) -> tuple[str, bytes, int]:
        text = token.decode("utf-8", "replace")
        attrs = _attributes(text)
        if "e" in attrs:
            raise ScramError(f"the server refused: {attrs['e']}")
        nonce, salt, iterations = attrs.get("r", ""), attrs.get("s", ""), attrs.get("i", "")
        if not nonce.startswith(self._nonce) or len(nonce) == len(self._nonce):
            raise ScramError("the server's nonce does not extend ours")
        try:
            rounds = int(iterations)
            raw_salt = base64.b64decode(salt, validate=True)
        except ValueError:
            raise ScramError("malformed server-first message") from None
        if rounds < MIN_ITERATIONS:
            raise ScramError(f"the server asks for only {rounds} iterations")
        self._server_first = text
        self.server_params = (raw_salt, rounds)
        return nonce, raw_salt, rounds

    def final(self, server_first: bytes, salted: bytes | None = None) -> bytes:
        nonce, salt, rounds = self.parse_server_first(server_first)
        self._salted_password = salted if salted is not None else self._salted(
            self.mechanism, self._password, salt, rounds)
        without_proof = f"c=biws,r={nonce}"
        self._auth_message = f"{self._bare},{self._server_first},{without_proof}".encode()
        client_key = _hmac(self._algo, self._salted_password, b"Client Key")
        signature = _hmac(self._algo, _h(self._algo, client_key), self._auth_message)
        proof = base64.b64encode(_xor(client_key, signature)).decode()
        return f"{without_proof},p={proof}".encode()

    def verify(self, server_final: bytes) -> None:
        attrs = _attributes(server_final.decode("utf-8", "replace"))
        if "e" in attrs:
            raise ScramError(f"the server refused: {attrs['e']}")
        server_key = _hmac(self._algo, self._salted_password, b"Server Key")
        expected = _hmac(self._algo, server_key, self._auth_message)
        try:
            got = base64.b64decode(attrs.get("v", ""), validate=True)
        except ValueError:
            raise ScramError("malformed server signature") from None
        if not hmac.compare_digest(got, expected):
            raise ScramError("the server's signature is wrong: it does not know our password")
