"""What the API refuses when a dedicated cluster is asked to change its CKUs."""

from __future__ import annotations

from streamplane.mothership.api.deps import ApiContext
from streamplane.mothership.api.errors import ApiError
from streamplane.mothership.api.load import read_model_from_worker
from streamplane.mothership.reconciler import SCALE
from streamplane.mothership.sizing import broker_count, scale_in_problems
from streamplane.mothership.store import ClusterType, LogicalCluster, LogicalClusterStatus


def check_scale(ctx: ApiContext, lc: LogicalCluster, cku: int) -> None:
    """Refuse a CKU change that cannot be done, saying why."""
    if lc.type != ClusterType.DEDICATED or lc.cku is None:
        raise ApiError(422, "invalid_request", f"cluster {lc.name} is a {lc.type.value} cluster: it has "
                       "no CKUs to scale; only dedicated clusters are sized in CKUs")
    if lc.status != LogicalClusterStatus.RUNNING:
        raise ApiError(409, "cluster_not_ready", f"cluster {lc.name} is {lc.status.value}; it can be "
                       "scaled once it is RUNNING")
    open_scale = ctx.store.operations.unfinished(lc.id, SCALE)
    if open_scale:
        raise ApiError(409, "scale_in_progress", f"cluster {lc.name} is already scaling to {lc.cku} CKU "
                       f"(operation {open_scale[0].id}); wait for it to finish")
    if cku < lc.cku:
        problems = scale_down_problems(ctx, lc, cku)
        if problems:
            raise ApiError(422, "insufficient_capacity", f"cluster {lc.name} cannot shrink to {cku} CKU "
                           f"({broker_count(cku)} brokers): " + "; ".join(problems))


def scale_down_problems(ctx: ApiContext, lc: LogicalCluster, cku: int) -> list[str]:
    pc, model = read_model_from_worker(ctx, lc, 0.0)
    return scale_in_problems(model, (b.id for b in pc.spec.brokers), cku)
