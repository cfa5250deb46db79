"""A dedicated cluster's load and its balancer: ``/v1/clusters/{ref}/load``, ``balance``,
``rebalance`` (now, or a dry run) and ``rebalance/{pause,resume,cancel}``.

Reading the load model waits on Kafka and the brokers' metrics, so these routes are async
and keep the store and the analyzer off the event loop.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from streamplane.loops.balancer.analyzer import Analyzer
from streamplane.loops.balancer.loop import dump_plan, load_summary
from streamplane.loops.balancer.model import ClusterModel
from streamplane.models import api as s
from streamplane.mothership.access import ClusterNotReadyError
from streamplane.mothership.api.deps import ApiContext, Auth, Ctx
from streamplane.mothership.api.errors import ERRORS, ApiError
from streamplane.mothership.api.load import LOAD_RATE_WINDOW_S, read_model
from streamplane.mothership.store import LogicalCluster, PhysicalCluster

router = APIRouter(prefix="/v1", dependencies=[Auth])


def _load_out(ctx: ApiContext, lc: LogicalCluster, pc: PhysicalCluster, model: ClusterModel) -> s.ClusterLoadOut:
    goals = Analyzer().goals
    balance = ctx.balancing.status(pc.id) if ctx.balancing is not None else None
    return s.ClusterLoadOut(
        cluster_id=lc.id, physical_cluster_id=pc.id,
        brokers=[b.model_dump(mode="json") for b in load_summary(model)],
        partitions=len(model.partitions),
        imbalance={g.name: g.imbalance(model) for g in goals}, notes=model.notes,
        balance=balance.model_dump(mode="json") if balance is not None else None)


@router.get("/clusters/{ref}/load", responses=ERRORS)
async def cluster_load(ctx: Ctx, ref: str) -> s.ClusterLoadOut:
    lc = await run_in_threadpool(ctx.cluster, ref)
    pc, model = await read_model(ctx, lc, LOAD_RATE_WINDOW_S)
    return await run_in_threadpool(_load_out, ctx, lc, pc, model)


@router.get("/clusters/{ref}/balance", responses=ERRORS)
def cluster_balance(ctx: Ctx, ref: str) -> dict[str, Any]:
    lc = ctx.cluster(ref)
    if lc.physical_cluster_id is None or ctx.balancing is None:
        raise ClusterNotReadyError(f"cluster {lc.name} is not balanced yet ({lc.status.value})")
    status = ctx.balancing.status(lc.physical_cluster_id)
    if status is None:
        raise ClusterNotReadyError(f"cluster {lc.name} has no balancer yet; try again in a few seconds")
    return status.model_dump(mode="json")


@router.post("/clusters/{ref}/rebalance", status_code=202, responses=ERRORS)
async def rebalance(ctx: Ctx, ref: str, body: s.RebalanceRequest | None = None) -> JSONResponse:
    lc = await run_in_threadpool(ctx.cluster, ref)
    body = body or s.RebalanceRequest()
    pc, model = await read_model(ctx, lc, LOAD_RATE_WINDOW_S)
    if body.dry_run:
        plan = await run_in_threadpool(Analyzer().plan, model)
        return JSONResponse({"dry_run": True, "plan": dump_plan(plan)}, 200)
    if ctx.balancing is None or not ctx.balancing.act(pc.id, "rebalance", "an operator asked for a rebalance"):
        raise ClusterNotReadyError(f"cluster {lc.name} has no balancer yet; try again in a few seconds")
    return JSONResponse({"dry_run": False, "requested": True}, 202)


@router.post("/clusters/{ref}/rebalance/{action}", status_code=202, responses=ERRORS)
def rebalance_action(ctx: Ctx, ref: str, action: str) -> dict[str, Any]:
    lc = ctx.cluster(ref)
    if action not in ("pause", "resume", "cancel"):
        raise ApiError(404, "not_found", f"no rebalance action {action!r}; use pause, resume or cancel")
    if lc.physical_cluster_id is None or ctx.balancing is None or not ctx.balancing.act(
            lc.physical_cluster_id, action):  # type: ignore[arg-type]
        raise ApiError(409, "conflict", f"cluster {lc.name} has no rebalance running to {action}")
    return {"requested": action}
