"""Key verifiers beyond the in-memory one: a JSON file (development) and the mothership's store.

The store keeps a salted scrypt hash of each API key's secret (for SASL/PLAIN) and its
SCRAM verifiers (salt, iterations, StoredKey, ServerKey; keys made before the store kept
them log in with PLAIN only). API keys are gateway credentials only: upstream, the
gateway logs in as the tenant's own Kafka principal, whose password the store keeps
encrypted (the mothership creates that user, with ACLs confined to the tenant's prefix).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from pathlib import Path

from pydantic import BaseModel, SecretStr

from streamplane.capacity import tenant_limits
from streamplane.gateway.auth import (
    InMemoryKeyVerifier,
    ScramEntry,
    TenantIdentity,
    UpstreamCredentials,
)
from streamplane.mothership.reconciler import tenant_prefix
from streamplane.mothership.store import (
    ApiKey,
    ClusterType,
    LogicalClusterStatus,
    NotFoundError,
    Store,
)

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


class StoreKeyVerifier:
    """API keys of the basic/standard clusters on one shared physical cluster."""

    def __init__(self, store: Store, physical_cluster_id: str) -> None:
        self._store = store
        self._physical = physical_cluster_id

    async def verify(self, key: str, secret: str) -> TenantIdentity | None:
        return await asyncio.to_thread(self._verify, key, secret)

    def _verify(self, key: str, secret: str) -> TenantIdentity | None:
        api_key = self._store.api_keys.verify(key, secret)
        return self._identity(api_key) if api_key is not None else None

    def _identity(self, api_key: ApiKey) -> TenantIdentity | None:
        """Whom the key stands for; None if its cluster is not one this gateway serves or
        has no principal yet (the mothership makes it before the cluster runs)."""
        cluster_id = api_key.logical_cluster_id
        if not self._served(cluster_id):
            return None
        try:
            principal = self._store.tenant_principals.get(cluster_id)
        except NotFoundError:
            log.warning("cluster %s has no Kafka principal yet; refusing key %s",
                        cluster_id, api_key.id)
            return None
        cluster_type = self._store.logical_clusters.get(cluster_id).type.value
        return TenantIdentity(key=api_key.id, cluster_id=cluster_id,
                              prefix=tenant_prefix(cluster_id), limits=tenant_limits(cluster_type),
                              upstream=UpstreamCredentials(username=principal.username,
                                                           password=principal.password))

    def _served(self, cluster_id: str) -> bool:
        try:
            cluster = self._store.logical_clusters.get(cluster_id)
        except NotFoundError:
            return False
        return (cluster.type != ClusterType.DEDICATED
                and cluster.physical_cluster_id == self._physical
                and cluster.status not in (LogicalClusterStatus.DELETING,
                                           LogicalClusterStatus.DELETED))

    async def scram(self, key: str, mechanism: str) -> ScramEntry | None:
        return await asyncio.to_thread(self._scram, key, mechanism)

    def _scram(self, key: str, mechanism: str) -> ScramEntry | None:
        found = self._store.api_keys.scram_credential(key, mechanism)
        if found is None:
            return None
        api_key, credential = found
        identity = self._identity(api_key)
        return ScramEntry(credential, identity) if identity is not None else None

    async def live(self, keys: Collection[str]) -> set[str]:
        return await asyncio.to_thread(self._live, list(keys))

    def _live(self, keys: list[str]) -> set[str]:
        alive = set()
        for key in keys:
            try:
                api_key = self._store.api_keys.get(key)
            except NotFoundError:
                continue
            if api_key.active and self._served(api_key.logical_cluster_id):
                alive.add(key)
        return alive
