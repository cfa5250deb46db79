"""``/v1/operations`` and a cluster's operations; ``/v1/satellites``."""

from __future__ import annotations

import time

from fastapi import APIRouter

from streamplane.models import api as s
from streamplane.mothership.api import views
from streamplane.mothership.api.deps import Auth, Ctx
from streamplane.mothership.api.errors import ERRORS

router = APIRouter(prefix="/v1", dependencies=[Auth])


@router.get("/satellites")
def list_satellites(ctx: Ctx) -> list[s.SatelliteOut]:
    """Every satellite ever recorded; one not heard from within the scheduler's
    ``satellite_max_age_s`` is lost (and given no new clusters)."""
    heard = {x.name: x for x in ctx.directory.all()} if ctx.directory is not None else None
    out = []
    for x in ctx.store.satellites.list():
        info = heard.get(x.name) if heard is not None else None
        state = "unknown" if heard is None else "lost" if info is None or (
            time.time() - info.updated_at > ctx.satellite_max_age_s) else "connected"
        out.append(s.SatelliteOut(name=x.name, zone=x.zone, capacity=x.capacity,
                                  host=info.host if info else None, state=state,
                                  last_seen_at=info.updated_at if info else None))
    return out


@router.get("/operations/{op_id}", responses=ERRORS)
def get_operation(ctx: Ctx, op_id: str) -> s.OperationOut:
    return views.operation_out(ctx.store.operations.get(op_id))


@router.get("/clusters/{ref}/operations", responses=ERRORS)
def cluster_operations(ctx: Ctx, ref: str) -> list[s.OperationOut]:
    return [views.operation_out(op) for op in ctx.store.operations.list(target_id=ctx.cluster(ref).id)]
