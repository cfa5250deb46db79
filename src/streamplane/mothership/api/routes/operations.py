"""``/v1/operations`` and a cluster's operations; ``/v1/satellites``."""

from __future__ import annotations

from fastapi import APIRouter

from streamplane.models import api as s
from streamplane.mothership.api import views
from streamplane.mothership.api.deps import Auth, Ctx
from streamplane.mothership.api.errors import ERRORS

router = APIRouter(prefix="/v1", dependencies=[Auth])


@router.get("/satellites")
def list_satellites(ctx: Ctx) -> list[s.SatelliteOut]:
    return [s.SatelliteOut(name=x.name, zone=x.zone, capacity=x.capacity)
            for x in ctx.store.satellites.list()]


@router.get("/operations/{op_id}", responses=ERRORS)
def get_operation(ctx: Ctx, op_id: str) -> s.OperationOut:
    return views.operation_out(ctx.store.operations.get(op_id))


@router.get("/clusters/{ref}/operations", responses=ERRORS)
def cluster_operations(ctx: Ctx, ref: str) -> list[s.OperationOut]:
    return [views.operation_out(op) for op in ctx.store.operations.list(target_id=ctx.cluster(ref).id)]
