"""A key verifier beyond the in-memory one: a JSON file, for development and tests.

Each entry names the tenant's logical cluster; the gateway logs in upstream with the
entry's own credentials (or the key and its secret). The store-backed verifier of the
gateways the mothership supervises lives with the store, in
``streamplane.mothership.gateway_keys``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from pathlib import Path

from pydantic import BaseModel, SecretStr

from streamplane.gateway.auth import (
    InMemoryKeyVerifier,
    ScramEntry,
    TenantIdentity,
    UpstreamCredentials,
)
from streamplane.tenancy import tenant_prefix

log = logging.getLogger(__name__)


class KeyFileEntry(BaseModel):
    key: str
    secret: SecretStr
    #: the logical cluster, e.g. lkc-abc123; the prefix is derived from it unless given
    cluster_id: str
    prefix: str | None = None
    #: the Kafka user the gateway logs in as; the key and its secret when unset
    upstream_username: str | None = None
    upstream_password: SecretStr | None = None

    def identity(self) -> TenantIdentity:
        return TenantIdentity(
            key=self.key, cluster_id=self.cluster_id,
            prefix=self.prefix if self.prefix is not None else tenant_prefix(self.cluster_id),
            upstream=UpstreamCredentials(
                username=self.upstream_username or self.key,
                password=self.upstream_password or self.secret))


class KeyFile(BaseModel):
    keys: list[KeyFileEntry]


class FileKeyVerifier:
    """Keys from a JSON file (``{"keys": [{"key", "secret", "cluster_id"}, ...]}``),
    read again whenever it changes: deleting a key from the file revokes it."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._mtime = -1.0
        self._keys = InMemoryKeyVerifier()
        self._reload()

    def _reload(self) -> None:
        mtime = self._path.stat().st_mtime
        if mtime == self._mtime:
            return
        parsed = KeyFile.model_validate_json(self._path.read_text())
        fresh = InMemoryKeyVerifier()
        for entry in parsed.keys:
            fresh.add(entry.identity(), entry.secret.get_secret_value())
        self._keys, self._mtime = fresh, mtime
        log.info("loaded %d API key(s) from %s", len(parsed.keys), self._path)

    async def verify(self, key: str, secret: str) -> TenantIdentity | None:
        return await self._keys.verify(key, secret)

    async def scram(self, key: str, mechanism: str) -> ScramEntry | None:
        return await self._keys.scram(key, mechanism)

    async def live(self, keys: Collection[str]) -> set[str]:
        try:
            await asyncio.to_thread(self._reload)
        except (OSError, ValueError) as exc:
            log.warning("keeping the keys loaded before: cannot read %s: %s", self._path, exc)
        return await self._keys.live(keys)
