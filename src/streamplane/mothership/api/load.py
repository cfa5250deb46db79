"""Reading a dedicated cluster's load model for the API (the balancer's own monitor)."""

from __future__ import annotations

import anyio.from_thread
from kafka.errors import KafkaError
from starlette.concurrency import run_in_threadpool

from streamplane.loops.balancer.model import ClusterModel
from streamplane.models.status import ClusterStatus
from streamplane.mothership.access import ClusterNotReadyError
from streamplane.mothership.api.deps import ApiContext
from streamplane.mothership.api.errors import ApiError
from streamplane.mothership.balancer_source import cluster_model
from streamplane.mothership.cluster_status import cluster_status
from streamplane.mothership.store import ClusterType, LogicalCluster, PhysicalCluster

#: the monitor's window for byte rates when the API reads a cluster's load
LOAD_RATE_WINDOW_S = 2.0


def physical(ctx: ApiContext, lc: LogicalCluster) -> tuple[PhysicalCluster, ClusterStatus]:
    """The Kafka cluster of ``lc`` and its latest status (with brokers)."""
    if lc.physical_cluster_id is None:
        raise ClusterNotReadyError(f"cluster {lc.name} has no Kafka cluster yet ({lc.status.value})")
    pc = ctx.store.physical_clusters.get(lc.physical_cluster_id)
    status = (cluster_status(ctx.statuses, pc.spec) if ctx.statuses is not None else None) \
        or pc.observed_status
    if status is None or not status.bootstrap:
        raise ClusterNotReadyError(f"cluster {lc.name} reports no brokers yet; try again once it runs")
    return pc, status


async def read_model(ctx: ApiContext, lc: LogicalCluster,
                     rate_window_s: float) -> tuple[PhysicalCluster, ClusterModel]:
    """The load model of dedicated cluster ``lc``, byte rates measured over ``rate_window_s``."""
    if lc.type != ClusterType.DEDICATED:
        raise ApiError(422, "invalid_request", f"cluster {lc.name} is a {lc.type.value} tenant of a shared "
                       "cluster; load and balancing are shown for dedicated clusters")
    pc, status = await run_in_threadpool(physical, ctx, lc)
    try:
        return pc, await cluster_model(ctx.store, pc, status, rate_window_s)
    except (OSError, KafkaError, ValueError) as exc:
        raise ApiError(503, "cluster_unreachable", f"cannot read the load of cluster {lc.name}: {exc}") from None


def read_model_from_worker(ctx: ApiContext, lc: LogicalCluster,
                           rate_window_s: float) -> tuple[PhysicalCluster, ClusterModel]:
    """:func:`read_model` for a sync route: runs it on the server's event loop and waits."""
    return anyio.from_thread.run(read_model, ctx, lc, rate_window_s)
