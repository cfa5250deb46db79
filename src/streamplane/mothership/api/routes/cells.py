"""``/v1/clusters/{ref}/quarantine``: move a basic/standard tenant between the cells of its
shared cluster."""

from __future__ import annotations

from fastapi import APIRouter

from streamplane.models import api as s
from streamplane.mothership.api import views
from streamplane.mothership.api.deps import Auth, Ctx
from streamplane.mothership.api.errors import ERRORS, ApiError
from streamplane.mothership.reconciler import CELL_OPERATIONS, QUARANTINE_BROKERS, QUARANTINE_CELL
from streamplane.mothership.scheduler import with_cell
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
    busy = [op for op in store.operations.list(target_id=lc.id, limit=20)
            if op.kind in CELL_OPERATIONS and not op.status.finished]
    if busy:
        raise ApiError(409, "conflict", f"cluster {lc.name} is already moving between cells "
                       f"(operation {busy[0].id}); wait for it to finish")
    spec = pc.spec
    cells = dict(spec.tenant_cells)
    if body.release:
        cells.pop(lc.id, None)
    else:
        cells[lc.id] = QUARANTINE_CELL
        if not any(b.cell == QUARANTINE_CELL for b in spec.brokers):
            sat = store.satellites.get(pc.satellite)
            spec = with_cell(spec, QUARANTINE_CELL, QUARANTINE_BROKERS, sat.zone)
    spec = spec.model_copy(update={"tenant_cells": cells})
    kind = "release_cluster" if body.release else "quarantine_cluster"
    with store.transaction() as tx:
        tx.physical_clusters.update_spec(spec, expected_generation=pc.generation)
        op = tx.operations.create(kind, lc.id, request={"cell": target})
    ctx.notify_changed()
    return s.ClusterAccepted(operation=views.operation_out(op), cluster=ctx.cluster_out(lc))
