"""Who a client is: API keys, the tenant behind each, and how fast a revocation bites.

A ``KeyVerifier`` is where the truth lives (the mothership's store in production, a dict in
tests). The ``Authenticator`` in front of it caches what the verifier said, because
checking a hashed secret is deliberately slow, and asks the verifier every
``recheck_interval_s`` which of the keys in use are still live, so a revoked key stops
working within that interval everywhere.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from streamplane.capacity import TenantLimits, tenant_limits
from streamplane.credentials.scram import MECHANISMS, ScramCredential

log = logging.getLogger(__name__)

UpstreamMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256"]


class UpstreamCredentials(BaseModel):
    """The Kafka principal the gateway logs in as, on the physical cluster, for a tenant."""

    model_config = ConfigDict(frozen=True)

    username: str
    password: SecretStr
    mechanism: UpstreamMechanism = "SCRAM-SHA-512"


class TenantIdentity(BaseModel):
    """What an API key stands for: one logical cluster, seen through its name prefix."""

    model_config = ConfigDict(frozen=True)

    #: the API key that authenticated (the SASL user name)
    key: str
    #: the logical cluster, e.g. ``lkc-abc123``; clients see it as their cluster id
    cluster_id: str
    #: every Kafka resource of the tenant starts with this, e.g. ``lkc-abc123_``
    prefix: str
    upstream: UpstreamCredentials
    #: what the logical cluster may use (its cluster type's row of the tenant table)
    limits: TenantLimits = Field(default_factory=lambda: tenant_limits("basic"))


@dataclass(frozen=True)
class ScramEntry:
    """A key's stored SCRAM credential for one mechanism, and whom it identifies."""

    credential: ScramCredential
    identity: TenantIdentity


class KeyVerifier(Protocol):
    """The source of truth about API keys."""

    async def verify(self, key: str, secret: str) -> TenantIdentity | None:
        """SASL/PLAIN: the identity if ``secret`` is the secret of live key ``key``."""
        ...

    async def scram(self, key: str, mechanism: str) -> ScramEntry | None:
        """SASL/SCRAM: the stored credential of live key ``key``; None if the key is
        unknown, revoked, or has no credential for ``mechanism``."""
        ...

    async def live(self, keys: Collection[str]) -> set[str]:
        """Which of ``keys`` are still live (the periodic re-check; must be cheap)."""
        ...


class InMemoryKeyVerifier:
    """Keys held in memory: tests, and the gateway's ``--keys`` file."""

    def __init__(self, iterations: int = 4096) -> None:
        self._iterations = iterations
        self._secrets: dict[str, bytes] = {}
        self._identities: dict[str, TenantIdentity] = {}
        self._scram: dict[tuple[str, str], ScramCredential] = {}

    def add(self, identity: TenantIdentity, secret: str) -> None:
        """Make ``identity.key`` with ``secret`` valid (PBKDF2: call it outside the loop)."""
        self._secrets[identity.key] = hashlib.sha256(secret.encode()).digest()
        self._identities[identity.key] = identity
        for mechanism in MECHANISMS:
            self._scram[(identity.key, mechanism)] = ScramCredential.derive(
                mechanism, secret, iterations=self._iterations)

    def remove(self, key: str) -> None:
        """The key is gone, as if revoked in the store."""
        self._secrets.pop(key, None)
        self._identities.pop(key, None)
        for mechanism in MECHANISMS:
            self._scram.pop((key, mechanism), None)

    async def verify(self, key: str, secret: str) -> TenantIdentity | None:
        stored = self._secrets.get(key, b"\0" * 32)
        ok = hmac.compare_digest(stored, hashlib.sha256(secret.encode()).digest())
        return self._identities.get(key) if ok else None

    async def scram(self, key: str, mechanism: str) -> ScramEntry | None:
        credential = self._scram.get((key, mechanism))
        identity = self._identities.get(key)
        if credential is None or identity is None:
            return None
        return ScramEntry(credential, identity)

    async def live(self, keys: Collection[str]) -> set[str]:
        return {k for k in keys if k in self._identities}


@dataclass
class _Cached:
    identity: TenantIdentity
    expires: float
    secret_digest: bytes | None = field(default=None, repr=False)


class Authenticator:
    """Caches a verifier's answers; forgets a key the moment it is revoked."""

    def __init__(self, verifier: KeyVerifier, *, cache_ttl_s: float = 300.0) -> None:
        self._verifier = verifier
        self._ttl = cache_ttl_s
        self._plain: dict[str, _Cached] = {}
        self._scram: dict[tuple[str, str], tuple[ScramEntry, float]] = {}
        self._revoked: set[str] = set()

    async def plain(self, key: str, secret: str) -> TenantIdentity | None:
        if key in self._revoked:
            return None
        digest = hashlib.sha256(secret.encode()).digest()
        cached = self._plain.get(key)
        now = time.monotonic()
        if cached is not None and cached.expires > now and cached.secret_digest is not None \
                and hmac.compare_digest(cached.secret_digest, digest):
            return cached.identity
        identity = await self._verifier.verify(key, secret)
        if identity is None or key in self._revoked:
            return None
        self._plain[key] = _Cached(identity, now + self._ttl, digest)
        return identity

    async def scram(self, key: str, mechanism: str) -> ScramEntry | None:
        if key in self._revoked:
            return None
        now = time.monotonic()
        cached = self._scram.get((key, mechanism))
        if cached is not None and cached[1] > now:
            return cached[0]
        entry = await self._verifier.scram(key, mechanism)
        if entry is None or key in self._revoked:
            return None
        self._scram[(key, mechanism)] = (entry, now + self._ttl)
        return entry

    def revoke(self, key: str) -> None:
        """Refuse ``key`` from now on, whatever the verifier says."""
        self._revoked.add(key)
        self.forget(key)

    def forget(self, key: str) -> None:
        """Drop what is cached about ``key``; the next login asks the verifier again."""
        self._plain.pop(key, None)
        for mechanism in MECHANISMS:
            self._scram.pop((key, mechanism), None)

    def is_revoked(self, key: str) -> bool:
        return key in self._revoked

    def cached_keys(self) -> set[str]:
        return set(self._plain) | {k for k, _ in self._scram}

    async def dead_keys(self, in_use: Collection[str], timeout: float) -> set[str]:
        """Ask the verifier about every cached or connected key; forget and return the
        ones that are no longer live. On a verifier failure nothing is dropped."""
        keys = self.cached_keys() | set(in_use)
        if not keys:
            return set()
        try:
            live = await asyncio.wait_for(self._verifier.live(keys), timeout)
        except Exception as exc:  # a flaky store must not log everyone out
            log.warning("re-checking %d API key(s) failed: %s", len(keys), exc)
            return set()
        dead = (keys - live) | (keys & self._revoked)
        for key in dead:
            self.forget(key)
        return dead
