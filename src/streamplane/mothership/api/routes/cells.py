"""``/v1/clusters/{ref}/quarantine``: move a basic/standard tenant between the cells of its
shared cluster."""

from __future__ import annotations

from fastapi import APIRouter

from streamplane.models import api as s
from streamplane.mothership.api import views
from streamplane.mothership.api.deps import Auth, Ctx
from streamplane.mothership.api.errors import ERRORS, ApiError
from streamplane.mothership.reconciler import CELL_OPERATIONS, QUARANTINE_CELL
from streamplane.mothership.store import ClusterType, LogicalClusterStatus
from streamplane.tenancy import DEFAULT_CELL

router = APIRouter(prefix="/v1", dependencies=[Auth])


@router.post("/clusters/{ref}/quarantine", status_code=202, responses=ERRORS)
def quarantine(ctx: Ctx, ref: str, body: s.QuarantineRequest | None = None) -> s.ClusterAccepted:
    """Move a basic/standard tenant into the quarantine cell of its shared cluster (or
    back with ``release``), online: only its partitions move."""
    body = body or s.QuarantineRequest()
    store = ctx.store
    lc = ctx.cluster(ref)
    if lc.type == ClusterType.DEDICATED:
        raise ApiError(422, "invalid_request", f"cluster {lc.name} is dedicated: it has brokers of its own; "
                       "quarantine moves a basic or standard tenant into a cell of its own")
    if lc.status != LogicalClusterStatus.RUNNING or lc.physical_cluster_id is None:
        raise ApiError(409, "cluster_not_ready", f"cluster {lc.name} is {lc.status.value}; it can be "
                       "quarantined once it is RUNNING")
    pc = store.physical_clusters.get(lc.physical_cluster_id)
    now = pc.spec.tenant_cells.get(lc.id, DEFAULT_CELL)
    target = DEFAULT_CELL if body.release else QUARANTINE_CELL
    if now == target:
        raise ApiError(409, "conflict", f"cluster {lc.name} already lives in cell {target}")
    busy = store.operations.unfinished(lc.id, CELL_OPERATIONS)
    if busy:
        raise ApiError(409, "conflict", f"cluster {lc.name} is already moving between cells "
                       f"(operation {busy[0].id}); wait for it to finish")
    # the intent only: the reconciler writes the PSC (and adds the cell's brokers)
    kind = "release_cluster" if body.release else "quarantine_cluster"
    op = store.operations.create(kind, lc.id, request={"cell": target})
    ctx.notify_changed()
    return s.ClusterAccepted(operation=views.operation_out(op), cluster=ctx.cluster_out(lc))
