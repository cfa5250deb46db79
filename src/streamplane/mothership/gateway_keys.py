"""The API keys a gateway accepts, read from the mothership's store.

A gateway runs as a process of its own and asks its ``KeyVerifier`` about every login;
this is the verifier behind the gateways the mothership supervises
(``python -m streamplane.mothership.gateway_process``). It lives on the mothership's side,
so the gateway itself knows nothing of the store.

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

from streamplane.capacity import tenant_limits
from streamplane.gateway.auth import ScramEntry, TenantIdentity, UpstreamCredentials
from streamplane.mothership.store import (
    ApiKey,
    ClusterType,
    LogicalClusterStatus,
    NotFoundError,
    Store,
)
from streamplane.tenancy import tenant_prefix

log = logging.getLogger(__name__)


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
