"""``/v1/clusters``: create, read, rename or scale, and delete logical clusters."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from streamplane.models import api as s
from streamplane.mothership.api import views
from streamplane.mothership.api.availability import check_availability
from streamplane.mothership.api.deps import Auth, Ctx, IdempotencyKey, IfMatch, expected_generation
from streamplane.mothership.api.errors import ERRORS, ApiError
from streamplane.mothership.api.idempotency import dump, idempotent
from streamplane.mothership.api.scaling import check_scale
from streamplane.mothership.store import ConflictError, LogicalClusterStatus, OperationStatus
from streamplane.versions import KAFKA_RELEASES, supported_versions

router = APIRouter(prefix="/v1", dependencies=[Auth])


@router.get("/clusters")
def list_clusters(ctx: Ctx) -> list[s.ClusterOut]:
    return [ctx.cluster_out(lc) for lc in ctx.store.logical_clusters.list()]


@router.post("/clusters", status_code=202, responses=ERRORS)
def create_cluster(ctx: Ctx, body: s.ClusterCreate, request: Request,
                   idempotency_key: IdempotencyKey = None) -> s.ClusterAccepted:
    def run() -> tuple[int, dict[str, Any]]:
        if body.kafka_version not in KAFKA_RELEASES:
            raise ApiError(422, "invalid_request", f"Kafka version {body.kafka_version!r} is not "
                           f"supported; choose one of {', '.join(supported_versions())}")
        if body.type == "dedicated" and body.cku is None:
            raise ApiError(422, "invalid_request", "a dedicated cluster needs cku (1 or more)")
        if body.type != "dedicated" and body.cku is not None:
            raise ApiError(422, "invalid_request", f"a {body.type} cluster has no cku; "
                           "only dedicated clusters are sized in CKUs")
        check_availability(ctx, body)
        with ctx.store.transaction() as tx:
            lc = tx.logical_clusters.create(name=body.name, type=body.type,  # type: ignore[arg-type]
                                            kafka_version=body.kafka_version, zones=body.zones,
                                            cku=body.cku)
            op = tx.operations.create("create_cluster", lc.id, request=body.model_dump(mode="json"))
        return 202, dump(s.ClusterAccepted(operation=views.operation_out(op), cluster=ctx.cluster_out(lc)))

    return idempotent(ctx, request, body, idempotency_key, run)  # type: ignore[return-value]


@router.get("/clusters/{ref}", responses=ERRORS)
def get_cluster(ctx: Ctx, ref: str) -> JSONResponse:
    lc = ctx.cluster(ref)
    return JSONResponse(dump(ctx.cluster_out(lc)), headers={"ETag": f'"{lc.generation}"'})


@router.patch("/clusters/{ref}", status_code=202, responses=ERRORS)
def update_cluster(ctx: Ctx, ref: str, body: s.ClusterUpdate, request: Request,
                   if_match: IfMatch = None,
                   idempotency_key: IdempotencyKey = None) -> s.ClusterAccepted:
    def run() -> tuple[int, dict[str, Any]]:
        lc = ctx.cluster(ref)
        gen = expected_generation(if_match, body.generation)
        scaling = body.cku is not None and body.cku != lc.cku
        if scaling:
            assert body.cku is not None
            check_scale(ctx, lc, body.cku)
            gen = lc.generation if gen is None else gen  # two scale requests: one wins
        with ctx.store.transaction() as tx:
            try:
                new = tx.logical_clusters.update(lc.id, expected_generation=gen, name=body.name,
                                                 cku=body.cku)
            except ConflictError as exc:
                if scaling:
                    raise ApiError(409, "conflict", f"cluster {lc.name} changed while this request was "
                                   f"checked (another scale request?); read it again and retry: {exc}") from None
                raise
            if scaling:
                op = tx.operations.create("scale_cluster", lc.id,
                                          request={"from_cku": lc.cku, "cku": body.cku})
            else:
                op = tx.operations.create("update_cluster", lc.id, request=body.model_dump(mode="json"))
                op = tx.operations.update(op.id, status=OperationStatus.SUCCEEDED)
        return 202, dump(s.ClusterAccepted(operation=views.operation_out(op), cluster=ctx.cluster_out(new)))

    return idempotent(ctx, request, body, idempotency_key, run)  # type: ignore[return-value]


@router.delete("/clusters/{ref}", status_code=202, responses=ERRORS)
def delete_cluster(ctx: Ctx, ref: str, request: Request,
                   if_match: IfMatch = None,
                   idempotency_key: IdempotencyKey = None) -> s.ClusterAccepted:
    def run() -> tuple[int, dict[str, Any]]:
        lc = ctx.cluster(ref)
        if lc.status == LogicalClusterStatus.DELETING:
            raise ApiError(409, "conflict", f"cluster {lc.name} is already being deleted")
        with ctx.store.transaction() as tx:
            new = tx.logical_clusters.mark_deleting(lc.id, expected_generation=expected_generation(if_match))
            op = tx.operations.create("delete_cluster", lc.id)
        return 202, dump(s.ClusterAccepted(operation=views.operation_out(op), cluster=ctx.cluster_out(new)))

    return idempotent(ctx, request, None, idempotency_key, run)  # type: ignore[return-value]
