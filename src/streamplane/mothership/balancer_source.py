"""The balancing loop's view of the control plane (``loops.balancer.loop.BalancerSource``):
the physical clusters in the store, what each one's logical clusters want of it, and what
its satellite last reported.

Which brokers leave is the sizing rule's (``sizing.py``); a shared cluster's tenants are
held to the cells its PSC names, everything else (internal topics too) to ``cell-0``, so a
quarantine cell holds its quarantined tenants only.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from streamplane.loops.balancer.loop import BalanceTarget, ClusterGone, build_model
from streamplane.loops.balancer.model import ClusterModel
from streamplane.models.status import ClusterStatus
from streamplane.mothership.cluster_status import cluster_status
from streamplane.mothership.sizing import leaving_brokers
from streamplane.mothership.store import (
    ClusterType,
    LogicalCluster,
    LogicalClusterStatus,
    NotFoundError,
    PhysicalCluster,
    PhysicalClusterKind,
    Store,
)
from streamplane.tenancy import DEFAULT_CELL

_GONE = (LogicalClusterStatus.DELETING, LogicalClusterStatus.DELETED)


class Statuses(Protocol):
    def get(self, satellite: str, cluster_id: str) -> ClusterStatus | None: ...


class StoreBalancerSource:
    """Physical clusters from the store, statuses from the control channel."""

    def __init__(self, store: Store, statuses: Statuses) -> None:
        self.store = store
        self.statuses = statuses

    def cluster_ids(self) -> list[str]:
        return [pc.id for pc in self.store.physical_clusters.list() if not pc.deleting]

    def target(self, cluster_id: str) -> BalanceTarget:
        try:
            pc = self.store.physical_clusters.get(cluster_id)
        except NotFoundError:
            raise ClusterGone(cluster_id) from None
        return target_of(pc, self.store.logical_clusters.list(physical_cluster_id=pc.id))

    def status(self, target: BalanceTarget) -> ClusterStatus | None:
        try:
            pc = self.store.physical_clusters.get(target.cluster_id)
        except NotFoundError:
            return None
        return cluster_status(self.statuses, pc.spec)


def target_of(pc: PhysicalCluster, tenants: list[LogicalCluster]) -> BalanceTarget:
    """What the balancer of ``pc`` works towards, given the logical clusters on it."""
    live = [lc for lc in tenants if lc.status not in _GONE]
    ids = [b.id for b in pc.spec.brokers]
    leaving: list[int] = []
    for lc in live:
        if lc.type == ClusterType.DEDICATED and lc.cku is not None:
            leaving = leaving_brokers(ids, lc.cku)
            break
    shared = pc.kind == PhysicalClusterKind.SHARED
    su = pc.spec.super_user
    return BalanceTarget(
        cluster_id=pc.id, generation=pc.generation, satellite=pc.satellite, deleting=pc.deleting,
        brokers=frozenset(ids), leaving=frozenset(leaving),
        tenant_cells={lc.id: pc.spec.tenant_cells.get(lc.id, DEFAULT_CELL) for lc in live} if shared else {},
        untenanted_cell=DEFAULT_CELL if shared else None,
        username=su.name, password=su.password.get_secret_value())


async def cluster_model(store: Store, pc: PhysicalCluster, status: ClusterStatus,
                        rate_window_s: float) -> ClusterModel:
    """The load model of ``pc`` as its balancer sees it (``cluster load``, dry runs, the
    scale-in check)."""
    tenants = await asyncio.to_thread(store.logical_clusters.list, physical_cluster_id=pc.id)
    return await build_model(target_of(pc, tenants), status, rate_window_s)
