"""API keys: a public id and a secret shown once. Only a salted scrypt hash is stored,
and the key's SCRAM verifiers (salt, iterations, StoredKey, ServerKey), from which the
gateway checks a SCRAM login without ever knowing the secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Select, select

from streamplane.credentials.scram import MECHANISMS, ScramCredential
from streamplane.mothership.store import ids
from streamplane.mothership.store._base import RepoContext
from streamplane.mothership.store.errors import NotFoundError
from streamplane.mothership.store.records import ApiKey, IssuedApiKey
from streamplane.mothership.store.schema import ApiKeyRow, LogicalClusterRow

KIND = "API key"


@dataclass(frozen=True)
class ScryptParams:
    """scrypt cost. The parameters are stored with every hash, so raising them later
    only affects new keys."""

    n: int = 2**14
    r: int = 8
    p: int = 1
    salt_bytes: int = 16
    hash_bytes: int = 32


DEFAULT_SCRYPT = ScryptParams()
#: verify() checks against this when the key is unknown, so an unknown key takes as long
#: to refuse as a wrong secret and key ids cannot be probed by timing
_DECOY_HASH = (
    "scrypt$16384$8$1$Y8iQ1EOd1Sxv5X8s4i141g==$bIWbyYU1izoMwgE313CqqP37h5ATzaVSa8-f7OH3xxQ="
)


def hash_secret(secret: str, params: ScryptParams = DEFAULT_SCRYPT) -> str:
    salt = secrets.token_bytes(params.salt_bytes)
    digest = _scrypt(secret, salt, params.n, params.r, params.p, params.hash_bytes)
    return "$".join(
        ["scrypt", str(params.n), str(params.r), str(params.p), _b64(salt), _b64(digest)]
    )


def check_secret(secret: str, stored: str) -> bool:
    """Constant-time comparison of ``secret`` against a hash_secret() value."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.urlsafe_b64decode(digest)
        actual = _scrypt(
            secret, base64.urlsafe_b64decode(salt), int(n), int(r), int(p), len(expected)
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(
        secret.encode(), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=256 * n * r
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii")


def scram_verifiers(secret: str) -> dict[str, dict[str, Any]]:
    """What a SCRAM server keeps of ``secret``, for every mechanism the gateway offers."""
    verifiers = {}
    for mechanism in MECHANISMS:
        c = ScramCredential.derive(mechanism, secret)
        verifiers[mechanism] = {"salt": _b64(c.salt), "iterations": c.iterations,
                                "stored_key": _b64(c.stored_key), "server_key": _b64(c.server_key)}
    return verifiers


def _credential(mechanism: str, stored: dict[str, Any]) -> ScramCredential:
    unb64 = base64.urlsafe_b64decode
    return ScramCredential(mechanism, unb64(stored["salt"]), int(stored["iterations"]),
                           stored_key=unb64(stored["stored_key"]),
                           server_key=unb64(stored["server_key"]))


class ApiKeys:
    def __init__(self, ctx: RepoContext, params: ScryptParams = DEFAULT_SCRYPT) -> None:
        self._ctx = ctx
        self._params = params

    def create(
        self, logical_cluster_id: str, *, description: str = "", role: str | None = None
    ) -> IssuedApiKey:
        """A new key for a live logical cluster. The secret is in the result and nowhere
        else: it cannot be shown again."""
        secret = ids.api_key_secret()
        secret_hash = hash_secret(secret, self._params)  # slow: outside the transaction
        scram = scram_verifiers(secret)
        with self._ctx.sessions.write() as s:
            cluster = s.get(LogicalClusterRow, logical_cluster_id)
            if cluster is None or cluster.deleted_at is not None:
                raise NotFoundError("logical cluster", logical_cluster_id)
            key_id = ids.api_key_id()
            while s.get(ApiKeyRow, key_id) is not None:
                key_id = ids.api_key_id()
            row = ApiKeyRow(
                id=key_id, logical_cluster_id=logical_cluster_id, secret_hash=secret_hash,
                description=description, role=role, created_at=self._ctx.clock(),
                revoked_at=None, scram=scram,
            )
            s.add(row)
            s.flush()
            return IssuedApiKey(api_key=ApiKey.model_validate(row), secret=SecretStr(secret))

    def get(self, key_id: str) -> ApiKey:
        with self._ctx.sessions.read() as s:
            row = s.get(ApiKeyRow, key_id)
            if row is None:
                raise NotFoundError(KIND, key_id)
            return ApiKey.model_validate(row)

    def list(
        self, *, logical_cluster_id: str | None = None, include_revoked: bool = False
    ) -> list[ApiKey]:
        stmt = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
        if logical_cluster_id is not None:
            stmt = stmt.where(ApiKeyRow.logical_cluster_id == logical_cluster_id)
        if not include_revoked:
            stmt = stmt.where(ApiKeyRow.revoked_at.is_(None))
        with self._ctx.sessions.read() as s:
            return [ApiKey.model_validate(r) for r in s.scalars(stmt)]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key for good. Revoking twice keeps the first revocation time."""
        with self._ctx.sessions.write() as s:
            row = s.get(ApiKeyRow, key_id)
            if row is None:
                raise NotFoundError(KIND, key_id)
            if row.revoked_at is None:
                row.revoked_at = self._ctx.clock()
                s.flush()
            return ApiKey.model_validate(row)

    def scram_credential(self, key_id: str, mechanism: str) -> tuple[ApiKey, ScramCredential] | None:
        """The SCRAM verifier of a live key (on a live cluster) for ``mechanism``; None if
        the key is unknown, revoked, or older than SCRAM support (it has PLAIN only)."""
        with self._ctx.sessions.read() as s:
            row = s.scalar(_live_key(key_id))
            if row is None or not row.scram or mechanism not in row.scram:
                return None
            return ApiKey.model_validate(row), _credential(mechanism, row.scram[mechanism])

    def verify(self, key_id: str, secret: str) -> ApiKey | None:
        """The key if ``secret`` is its secret and the key and its cluster are live;
        None otherwise, without saying which part was wrong."""
        stmt = _live_key(key_id)
        with self._ctx.sessions.read() as s:
            row = s.scalar(stmt)
            key = ApiKey.model_validate(row) if row is not None else None
            stored = row.secret_hash if row is not None else _DECOY_HASH
        ok = check_secret(secret, stored)  # slow: outside the transaction
        return key if ok and key is not None else None


def _live_key(key_id: str) -> Select[ApiKeyRow]:
    return (
        select(ApiKeyRow)
        .join(LogicalClusterRow, LogicalClusterRow.id == ApiKeyRow.logical_cluster_id)
        .where(
            ApiKeyRow.id == key_id,
            ApiKeyRow.revoked_at.is_(None),
            LogicalClusterRow.deleted_at.is_(None),
        )
    )
