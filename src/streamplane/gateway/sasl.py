"""The server side of SASL/PLAIN and SASL/SCRAM for clients logging in with an API key."""

from __future__ import annotations

from typing import Protocol

from streamplane.credentials.scram import MECHANISMS, ScramError, ScramServer
from streamplane.gateway.auth import Authenticator, ScramEntry, TenantIdentity

PLAIN = "PLAIN"
SUPPORTED_MECHANISMS = (PLAIN, *MECHANISMS)
#: what Kafka brokers say, so clients show their usual message
PLAIN_FAILED = "Authentication failed: Invalid username or password"


def scram_failed(mechanism: str) -> str:
    return ("Authentication failed during authentication due to invalid credentials with "
            f"SASL mechanism {mechanism}")


class SaslFailure(Exception):
    """The client could not log in; the message is for the client."""


class MechanismServer(Protocol):
    @property
    def complete(self) -> bool: ...

    @property
    def identity(self) -> TenantIdentity | None: ...

    async def step(self, token: bytes) -> bytes:
        """The answer to one client token, or SaslFailure."""
        ...


class PlainServer:
    def __init__(self, auth: Authenticator) -> None:
        self._auth = auth
        self.complete = False
        self.identity: TenantIdentity | None = None

    async def step(self, token: bytes) -> bytes:
        parts = token.split(b"\0")
        if len(parts) != 3:
            raise SaslFailure("Invalid SASL/PLAIN message: expected authzid, user and password")
        try:
            authzid, user, password = (p.decode("utf-8") for p in parts)
        except UnicodeDecodeError:
            raise SaslFailure("Invalid SASL/PLAIN message: not UTF-8") from None
        if not user or not password:
            raise SaslFailure(PLAIN_FAILED)
        if authzid and authzid != user:
            raise SaslFailure("Authentication failed: the authorization id must be the user name")
        identity = await self._auth.plain(user, password)
        if identity is None:
            raise SaslFailure(PLAIN_FAILED)
        self.identity = identity
        self.complete = True
        return b""


class ScramMechanismServer:
    def __init__(self, mechanism: str, auth: Authenticator, decoy_secret: bytes) -> None:
        self._mechanism = mechanism
        self._auth = auth
        self._server = ScramServer(mechanism, decoy_secret)
        self._entry: ScramEntry | None = None
        self._started = False
        self.complete = False
        self.identity: TenantIdentity | None = None

    async def step(self, token: bytes) -> bytes:
        try:
            if not self._started:
                self._started = True
                first = self._server.parse_first(token)
                self._entry = await self._auth.scram(first.user, self._mechanism)
                return self._server.first(self._entry.credential if self._entry else None)
            final = self._server.final(token)
        except ScramError as exc:
            if "invalid credentials" in str(exc):
                raise SaslFailure(scram_failed(self._mechanism)) from None
            raise SaslFailure(f"Authentication failed: {exc}") from None
        if self._entry is None or self._auth.is_revoked(self._entry.identity.key):
            raise SaslFailure(scram_failed(self._mechanism))
        self.identity = self._entry.identity
        self.complete = True
        return final


def mechanism_server(mechanism: str, auth: Authenticator, decoy_secret: bytes) -> MechanismServer:
    if mechanism == PLAIN:
        return PlainServer(auth)
    return ScramMechanismServer(mechanism, auth, decoy_secret)
