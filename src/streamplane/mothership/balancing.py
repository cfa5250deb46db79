"""The mothership's balancing loop: one balancer per physical cluster.

Each balancer looks at its cluster every few seconds (monitor → load model → analyzer) and
decides whether to execute the plan:

* at once when brokers are draining (scale-in, or brokers no longer in the PSC), when a
  hard goal is broken (zone spread, cells), when the PSC changed since the cluster was
  last balanced (scale-out), or when an operator asked;
* otherwise only when a soft goal's imbalance stays above ``trigger_imbalance`` for
  ``sustain_s``, and not within ``cooldown_s`` of the previous execution. The analyzer
  balances to within 10% and aims at 8%, far inside the trigger, so the loop cannot
  thrash between two plans.

One execution at a time per cluster: the balancer awaits its executor, and the executor's
state file (``<state dir>/<cluster>.json``) makes a mothership killed mid-plan resume that
execution after a restart before it plans anything new.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from streamplane.files import read_json, write_json
from streamplane.kafka.settings import ClientSettings
from streamplane.loops.balancer.analyzer import Analyzer
from streamplane.loops.balancer.executor import (
    ExecutionState,
    Executor,
    ExecutorConfig,
    Phase,
    load_state,
)
from streamplane.loops.balancer.model import BrokerState, ClusterModel, Resource
from streamplane.loops.balancer.monitor import build_model_from_status
from streamplane.loops.balancer.plan import Plan
from streamplane.loops.balancer.reassign import ReassignmentAdmin
from streamplane.models.status import ClusterState, ClusterStatus
from streamplane.mothership.sizing import leaving_brokers
from streamplane.mothership.store import (
    ClusterType,
    LogicalClusterStatus,
    NotFoundError,
    PhysicalCluster,
    PhysicalClusterKind,
    Store,
)
from streamplane.tenancy import DEFAULT_CELL

log = logging.getLogger(__name__)

#: the goals that must hold whatever the imbalance; breaking one is reason to move at once
HARD_GOALS = ("rack-aware", "cell-containment", "broker-drain")


class Statuses(Protocol):
    def get(self, satellite: str, cluster_id: str) -> ClusterStatus | None: ...


@dataclass(frozen=True)
class BalanceSettings:
    interval_s: float = 5.0
    #: the monitor's window for byte rates
    rate_window_s: float = 2.0
    #: a soft goal this far from even starts the clock...
    trigger_imbalance: float = 0.25
    #: ...and the plan runs once it has stayed there this long
    sustain_s: float = 120.0
    #: no self-started execution sooner than this after the previous one ended
    cooldown_s: float = 300.0
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)


class Trigger:
    """Hysteresis for self-started executions (forced ones bypass it)."""

    def __init__(self, settings: BalanceSettings) -> None:
        self.settings = settings
        self.above_since: float | None = None
        self.last_execution_end: float | None = None

    def decide(self, now: float, soft_imbalance: float, forced: str | None) -> str | None:
        """Why to execute now, or None to wait."""
        if forced:
            return forced
        s = self.settings
        if soft_imbalance <= s.trigger_imbalance:
            self.above_since = None
            return None
        if self.above_since is None:
            self.above_since = now
        if now - self.above_since < s.sustain_s:
            return None
        if self.last_execution_end is not None and now - self.last_execution_end < s.cooldown_s:
            return None
        return (f"imbalance {soft_imbalance:.0%} has stayed above {s.trigger_imbalance:.0%} "
                f"for {now - self.above_since:.0f} s")

    def executed(self, now: float) -> None:
        self.last_execution_end = now
        self.above_since = None


class ExecutionSummary(BaseModel):
    phase: str
    moves_done: int
    moves_total: int
    moves_in_flight: int
    bytes_moved: int
    bytes_total: int
    eta_s: float | None
    message: str

    @classmethod
    def of(cls, state: ExecutionState) -> ExecutionSummary:
        return cls(phase=state.phase.value, moves_done=state.moves_done, moves_total=state.moves_total,
                   moves_in_flight=state.moves_in_flight, bytes_moved=state.bytes_moved,
                   bytes_total=state.bytes_total, eta_s=state.eta_s, message=state.message)


class BrokerLoadOut(BaseModel):
    id: int
    zone: str
    cell: str
    state: str
    replicas: int
    leaders: int
    disk_bytes: float
    nw_in_bytes_per_s: float
    nw_out_bytes_per_s: float


class BalanceStatus(BaseModel):
    cluster_id: str
    state: Literal["waiting", "balanced", "unbalanced", "executing", "failed"] = "waiting"
    message: str = ""
    #: the PSC generation the last look was taken at
    generation: int | None = None
    #: the PSC generation the cluster was last balanced at (a finished execution or no moves)
    balanced_generation: int | None = None
    evaluated_at: float | None = None
    imbalance: dict[str, float] = Field(default_factory=dict)
    draining: list[int] = Field(default_factory=list)
    brokers: list[BrokerLoadOut] = Field(default_factory=list)
    execution: ExecutionSummary | None = None
    last_execution: ExecutionSummary | None = None

    def holds(self, broker_ids: list[int]) -> int:
        """Replicas plus leaderships the given brokers still hold, as last seen."""
        return sum(b.replicas + b.leaders for b in self.brokers if b.id in broker_ids)


def brokers_to_remove(store: Store, pc: PhysicalCluster) -> list[int]:
    """Brokers of ``pc`` beyond what its dedicated logical cluster's CKUs buy: the
    highest ids go first (the controllers are the lowest, and stay)."""
    ids = [b.id for b in pc.spec.brokers]
    for lc in store.logical_clusters.list(physical_cluster_id=pc.id):
        if lc.type == ClusterType.DEDICATED and lc.cku is not None and lc.status not in (
                LogicalClusterStatus.DELETING, LogicalClusterStatus.DELETED):
            return leaving_brokers(ids, lc.cku)
    return []


def tenant_cells(store: Store, pc: PhysicalCluster) -> tuple[dict[str, str], str | None]:
    """Where the tenants of a shared cluster live: each in the cell its PSC names, or in
    ``cell-0``; the cluster's internal topics stay in ``cell-0`` too, so a quarantine
    cell holds its quarantined tenants only. A dedicated cluster has no such rule."""
    if pc.kind != PhysicalClusterKind.SHARED:
        return {}, None
    tenants = {lc.id: pc.spec.tenant_cells.get(lc.id, DEFAULT_CELL)
               for lc in store.logical_clusters.list(physical_cluster_id=pc.id)
               if lc.status not in (LogicalClusterStatus.DELETING, LogicalClusterStatus.DELETED)}
    return tenants, DEFAULT_CELL


async def cluster_model(store: Store, pc: PhysicalCluster, status: ClusterStatus,
                        rate_window_s: float) -> ClusterModel:
    """The load model of ``pc`` as the balancer sees it: brokers beyond the CKUs, or no
    longer in the PSC, are draining; tenants of a shared cluster are held to their cells."""
    spec_ids = {b.id for b in pc.spec.brokers}
    leaving = set(await asyncio.to_thread(brokers_to_remove, store, pc))
    leaving |= {b.id for b in status.brokers if b.id not in spec_ids}
    cells, untenanted = await asyncio.to_thread(tenant_cells, store, pc)
    su = pc.spec.super_user
    return await build_model_from_status(
        status, su.name, su.password.get_secret_value(),
        broker_states=dict.fromkeys(leaving, BrokerState.DRAINING),
        tenant_cells=cells, untenanted_cell=untenanted, rate_window_s=rate_window_s)


def load_summary(model: ClusterModel) -> list[BrokerLoadOut]:
    out = []
    for b in model.brokers:
        out.append(BrokerLoadOut(
            id=b.id, zone=b.zone, cell=b.cell, state=b.state.value,
            replicas=int(model.load_of(b.id, Resource.REPLICAS)),
            leaders=int(model.load_of(b.id, Resource.LEADERS)),
            disk_bytes=model.load_of(b.id, Resource.DISK),
            nw_in_bytes_per_s=model.load_of(b.id, Resource.NW_IN),
            nw_out_bytes_per_s=model.load_of(b.id, Resource.NW_OUT)))
    return out


class ClusterBalancer:
    """The loop of one physical cluster; see the module docstring."""

    def __init__(self, cluster_id: str, store: Store, statuses: Statuses, state_dir: Path,
                 settings: BalanceSettings) -> None:
        self.cluster_id = cluster_id
        self.store = store
        self.statuses = statuses
        self.settings = settings
        self.state_path = state_dir / f"{cluster_id}.json"
        self.mark_path = state_dir / f"{cluster_id}.balanced.json"
        self.trigger = Trigger(settings)
        self.analyzer = Analyzer()
        self._status = BalanceStatus(cluster_id=cluster_id, balanced_generation=self._read_mark())
        self._lock = threading.Lock()
        self._executor: Executor | None = None
        self._requested: str | None = None
        self._wake = asyncio.Event()

    # ---- what others may call (from any thread via the service) ----------------------

    @property
    def status(self) -> BalanceStatus:
        with self._lock:
            status = self._status.model_copy(deep=True)
        ex = self._executor
        if ex is not None and (state := ex.state) is not None:
            status.execution = ExecutionSummary.of(state)
        return status

    def request(self, why: str) -> None:
        self._requested = why
        self._wake.set()

    def pause(self) -> bool:
        if self._executor is None:
            return False
        self._executor.pause()
        return True

    def resume(self) -> bool:
        if self._executor is None:
            return False
        self._executor.resume()
        return True

    def cancel(self) -> bool:
        if self._executor is None:
            return False
        self._executor.cancel()
        return True

    # ---- the loop ---------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wake.clear()
            try:
                said = await self.cycle()
                if said:
                    log.info("balancer %s: %s", self.cluster_id, said)
            except NotFoundError:
                return  # the cluster is gone
            except Exception as exc:
                log.exception("balancer %s: cycle failed", self.cluster_id)
                self._update(message=f"could not look at the cluster: {type(exc).__name__}: {exc}")
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            await asyncio.wait(waits, timeout=self.settings.interval_s, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()

    async def cycle(self) -> str:
        pc = await asyncio.to_thread(self.store.physical_clusters.get, self.cluster_id)
        if pc.deleting:
            return ""
        status = self.statuses.get(pc.satellite, pc.id)
        if status is None or status.status != ClusterState.HEALTHY or not status.bootstrap:
            self._update(state="waiting", message="waiting for the cluster to be healthy")
            return ""
        if status.observed_generation != pc.generation:
            self._update(state="waiting", message=f"waiting for satellite {pc.satellite} to apply "
                         f"generation {pc.generation}")
            return ""
        recorded = await asyncio.to_thread(load_state, self.state_path)
        if recorded is not None and not recorded.settled:
            return await self._execute(pc, status, None, "resuming the execution a restart interrupted")
        model = await self._model(pc, status)
        plan = await asyncio.to_thread(self.analyzer.plan, model)
        draining = sorted(b.id for b in model.brokers if b.state is BrokerState.DRAINING)
        soft = max((v for k, v in plan.before.items() if k not in HARD_GOALS and "capacity" not in k),
                   default=0.0)
        self._update(generation=pc.generation, evaluated_at=time.time(), imbalance=plan.before,
                     draining=draining, brokers=load_summary(model))
        if not plan.moves:
            self._requested = None
            self._balanced(pc.generation)
            return ""
        forced = self._forced(pc, plan, draining)
        why = self.trigger.decide(time.monotonic(), soft, forced)
        if why is None:
            self._update(state="unbalanced", message=f"largest soft-goal imbalance {soft:.0%}; "
                         f"executing only past {self.settings.trigger_imbalance:.0%} sustained")
            return ""
        return await self._execute(pc, status, plan, why)

    def _forced(self, pc: PhysicalCluster, plan: Plan, draining: list[int]) -> str | None:
        if self._requested:
            return self._requested
        if draining and plan.before.get("broker-drain", 0) > 0:
            return f"broker(s) {', '.join(map(str, draining))} are leaving the cluster"
        broken = [g for g in HARD_GOALS if plan.before.get(g, 0) > 0]
        if broken:
            return f"hard goal(s) {', '.join(broken)} not met"
        if self._status.balanced_generation != pc.generation:
            return f"the cluster changed (generation {pc.generation}) since it was last balanced"
        return None

    async def _model(self, pc: PhysicalCluster, status: ClusterStatus) -> ClusterModel:
        return await cluster_model(self.store, pc, status, self.settings.rate_window_s)

    async def _execute(self, pc: PhysicalCluster, status: ClusterStatus, plan: Plan | None, why: str) -> str:
        assert status.bootstrap is not None
        su = pc.spec.super_user
        admin = ReassignmentAdmin(ClientSettings(status.bootstrap, su.name, su.password.get_secret_value()),
                                  timeout=self.settings.executor.request_timeout_s)
        self._requested = None
        executor = Executor(admin, self.state_path, self.settings.executor)
        self._executor = executor
        moves = f"{len(plan.moves)} moves, {plan.bytes_to_move} bytes" if plan else "an interrupted plan"
        self._update(state="executing", message=f"executing {moves}: {why}")
        log.info("balancer %s: executing %s: %s", self.cluster_id, moves, why)
        try:
            state = await executor.run(plan)
        finally:
            self._executor = None
            await asyncio.to_thread(admin.close)
        self.trigger.executed(time.monotonic())
        summary = ExecutionSummary.of(state)
        self._update(last_execution=summary,
                     state="failed" if state.phase == Phase.FAILED else "waiting",
                     message=state.message)
        if state.phase == Phase.COMPLETED and plan is not None:
            # whatever is left is the threshold's business, not this generation's
            self._balanced(pc.generation, keep_state=True)
        return f"execution {state.phase.value}: {state.message}"

    # ---- bookkeeping ------------------------------------------------------------------

    def _update(self, **changes: Any) -> None:
        with self._lock:
            self._status = self._status.model_copy(update=changes)

    def _balanced(self, generation: int, keep_state: bool = False) -> None:
        if self._status.balanced_generation != generation:
            with contextlib.suppress(OSError):
                write_json(self.mark_path, {"generation": generation})
        changes: dict[str, Any] = {"balanced_generation": generation}
        if not keep_state:
            changes |= {"state": "balanced", "message": "every goal is met"}
        self._update(**changes)

    def _read_mark(self) -> int | None:
        try:
            data = read_json(self.mark_path)
        except (OSError, ValueError):
            return None
        gen = data.get("generation") if isinstance(data, dict) else None
        return gen if isinstance(gen, int) else None


class BalancingService:
    """Keeps one ``ClusterBalancer`` task per physical cluster of the store."""

    def __init__(self, store: Store, statuses: Statuses, state_dir: Path,
                 settings: BalanceSettings | None = None) -> None:
        self.store = store
        self.statuses = statuses
        self.state_dir = state_dir
        self.settings = settings or BalanceSettings()
        self.balancers: dict[str, ClusterBalancer] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            while not stop.is_set():
                try:
                    await self._sync(stop)
                except Exception:
                    log.exception("balancing: could not list physical clusters")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.settings.interval_s)
        finally:
            for task in self._tasks.values():
                task.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def _sync(self, stop: asyncio.Event) -> None:
        pcs = {pc.id: pc for pc in await asyncio.to_thread(self.store.physical_clusters.list)
               if not pc.deleting}
        for pc_id in list(self._tasks):
            if pc_id not in pcs or self._tasks[pc_id].done():
                task = self._tasks.pop(pc_id)
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                if pc_id not in pcs:
                    self.balancers.pop(pc_id, None)
        for pc_id in pcs:
            if pc_id not in self._tasks:
                balancer = self.balancers.get(pc_id) or ClusterBalancer(
                    pc_id, self.store, self.statuses, self.state_dir, self.settings)
                self.balancers[pc_id] = balancer
                self._tasks[pc_id] = asyncio.create_task(balancer.run(stop), name=f"balancer-{pc_id}")

    # ---- thread-safe entry points for the API ---------------------------------------

    def status(self, cluster_id: str) -> BalanceStatus | None:
        balancer = self.balancers.get(cluster_id)
        return balancer.status if balancer is not None else None

    def act(self, cluster_id: str, action: Literal["rebalance", "pause", "resume", "cancel"],
            why: str = "an operator asked") -> bool:
        """Ask the cluster's balancer to do something; False when it cannot now."""
        balancer = self.balancers.get(cluster_id)
        if balancer is None or self._loop is None:
            return False
        if action == "rebalance":
            self._loop.call_soon_threadsafe(balancer.request, why)
            return True
        executing = balancer.status.execution is not None
        if not executing:
            return False
        method: Callable[[], bool] = getattr(balancer, action)
        self._loop.call_soon_threadsafe(method)
        return True


def dump_plan(plan: Plan) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(plan.model_dump_json())
    data["bytes_to_move"] = plan.bytes_to_move
    return data
