"""The balancing loop: one balancer per physical cluster (monitor → model → analyzer →
detector → executor).

Each balancer looks at its cluster every few seconds and asks the detector
(``detector.py``) whether to execute the plan. One execution at a time per cluster: the
balancer awaits its executor, and the executor's state file (``<state dir>/<cluster>.json``)
makes a control plane killed mid-plan resume that execution after a restart before it plans
anything new. The loop knows the clusters only through a ``BalancerSource``: which ones
exist, what each one's spec says it should hold, and what its satellite last reported.
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
from streamplane.loops.balancer.detector import BalanceSettings, Trigger, forced_reason, soft_imbalance
from streamplane.loops.balancer.executor import Executor
from streamplane.loops.balancer.executor_state import ExecutionState, Phase, load_state
from streamplane.loops.balancer.model import BrokerState, ClusterModel, Resource
from streamplane.loops.balancer.monitor import build_model_from_status
from streamplane.loops.balancer.plan import Plan
from streamplane.loops.balancer.reassign import ReassignmentAdmin
from streamplane.loops.runner import Wakeup, run_loop
from streamplane.models.status import ClusterState, ClusterStatus

log = logging.getLogger(__name__)


class ClusterGone(Exception):
    """The physical cluster no longer exists; its balancer ends."""


@dataclass(frozen=True)
class BalanceTarget:
    """One physical cluster as the control plane wants it, for its balancer."""

    cluster_id: str
    generation: int
    satellite: str
    deleting: bool
    #: the brokers its spec names
    brokers: frozenset[int]
    #: brokers of the spec that are to be emptied (beyond what the cluster's size buys)
    leaving: frozenset[int]
    #: each tenant's cell on a shared cluster, and the cell of everything else (None: no rule)
    tenant_cells: dict[str, str]
    untenanted_cell: str | None
    username: str
    password: str = field(repr=False)


class BalancerSource(Protocol):
    """What a balancer reads of the world. Its methods may block (they are called from a
    thread); ``target`` raises ``ClusterGone`` for a cluster that no longer exists."""

    def cluster_ids(self) -> list[str]: ...
    def target(self, cluster_id: str) -> BalanceTarget: ...
    def status(self, target: BalanceTarget) -> ClusterStatus | None: ...


async def build_model(target: BalanceTarget, status: ClusterStatus, rate_window_s: float) -> ClusterModel:
    """The load model of a cluster as its balancer sees it: brokers beyond its size, or no
    longer in its spec, are draining; tenants of a shared cluster are held to their cells."""
    leaving = set(target.leaving) | {b.id for b in status.brokers if b.id not in target.brokers}
    return await build_model_from_status(
        status, target.username, target.password,
        broker_states=dict.fromkeys(leaving, BrokerState.DRAINING),
        tenant_cells=target.tenant_cells, untenanted_cell=target.untenanted_cell,
        rate_window_s=rate_window_s)


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


def load_summary(model: ClusterModel) -> list[BrokerLoadOut]:
    return [BrokerLoadOut(
        id=b.id, zone=b.zone, cell=b.cell, state=b.state.value,
        replicas=int(model.load_of(b.id, Resource.REPLICAS)),
        leaders=int(model.load_of(b.id, Resource.LEADERS)),
        disk_bytes=model.load_of(b.id, Resource.DISK),
        nw_in_bytes_per_s=model.load_of(b.id, Resource.NW_IN),
        nw_out_bytes_per_s=model.load_of(b.id, Resource.NW_OUT)) for b in model.brokers]


def dump_plan(plan: Plan) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(plan.model_dump_json())
    data["bytes_to_move"] = plan.bytes_to_move
    return data


class ClusterBalancer:
    """The loop of one physical cluster; see the module docstring."""

    def __init__(self, cluster_id: str, source: BalancerSource, state_dir: Path,
                 settings: BalanceSettings) -> None:
        self.cluster_id = cluster_id
        self.source = source
        self.settings = settings
        self.state_path = state_dir / f"{cluster_id}.json"
        self.mark_path = state_dir / f"{cluster_id}.balanced.json"
        self.trigger = Trigger(settings)
        self.analyzer = Analyzer()
        self._status = BalanceStatus(cluster_id=cluster_id, balanced_generation=self._read_mark())
        self._lock = threading.Lock()
        self._executor: Executor | None = None
        self._requested: str | None = None
        self._wakeup = Wakeup()

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
        self._wakeup.set()

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
        await run_loop(self.cycle, stop, self.settings.interval_s, log, f"balancer {self.cluster_id}",
                       wakeup=self._wakeup, ends_on=(ClusterGone,), on_error=self._failed)

    def _failed(self, exc: Exception) -> None:
        self._update(message=f"could not look at the cluster: {type(exc).__name__}: {exc}")

    async def cycle(self) -> str:
        target = await asyncio.to_thread(self.source.target, self.cluster_id)
        if target.deleting:
            return ""
        status = self.source.status(target)
        if status is None or status.status != ClusterState.HEALTHY or not status.bootstrap:
            self._update(state="waiting", message="waiting for the cluster to be healthy")
            return ""
        if status.observed_generation != target.generation:
            self._update(state="waiting", message=f"waiting for satellite {target.satellite} to apply "
                         f"generation {target.generation}")
            return ""
        recorded = await asyncio.to_thread(load_state, self.state_path)
        if recorded is not None and not recorded.settled:
            return await self._execute(target, status, None, "resuming the execution a restart interrupted")
        model = await build_model(target, status, self.settings.rate_window_s)
        plan = await asyncio.to_thread(self.analyzer.plan, model)
        draining = sorted(b.id for b in model.brokers if b.state is BrokerState.DRAINING)
        soft = soft_imbalance(plan)
        self._update(generation=target.generation, evaluated_at=time.time(), imbalance=plan.before,
                     draining=draining, brokers=load_summary(model))
        if not plan.moves:
            self._requested = None
            self._balanced(target.generation)
            return ""
        forced = forced_reason(plan, draining, self._requested, target.generation,
                               self._status.balanced_generation)
        why = self.trigger.decide(time.monotonic(), soft, forced)
        if why is None:
            self._update(state="unbalanced", message=f"largest soft-goal imbalance {soft:.0%}; "
                         f"executing only past {self.settings.trigger_imbalance:.0%} sustained")
            return ""
        return await self._execute(target, status, plan, why)

    async def _execute(self, target: BalanceTarget, status: ClusterStatus, plan: Plan | None, why: str) -> str:
        assert status.bootstrap is not None
        admin = ReassignmentAdmin(ClientSettings(status.bootstrap, target.username, target.password),
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
            self._balanced(target.generation, keep_state=True)
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
    """Keeps one ``ClusterBalancer`` task per physical cluster the source names."""

    def __init__(self, source: BalancerSource, state_dir: Path,
                 settings: BalanceSettings | None = None) -> None:
        self.source = source
        self.state_dir = state_dir
        self.settings = settings or BalanceSettings()
        self.balancers: dict[str, ClusterBalancer] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = stop
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            await run_loop(self._sync, stop, self.settings.interval_s, log, "balancing")
        finally:
            for task in self._tasks.values():
                task.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def _sync(self) -> str:
        assert self._stop is not None
        ids = set(await asyncio.to_thread(self.source.cluster_ids))
        for pc_id in list(self._tasks):
            if pc_id not in ids or self._tasks[pc_id].done():
                task = self._tasks.pop(pc_id)
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                if pc_id not in ids:
                    self.balancers.pop(pc_id, None)
        for pc_id in sorted(ids):
            if pc_id not in self._tasks:
                balancer = self.balancers.get(pc_id) or ClusterBalancer(
                    pc_id, self.source, self.state_dir, self.settings)
                self.balancers[pc_id] = balancer
                self._tasks[pc_id] = asyncio.create_task(balancer.run(self._stop), name=f"balancer-{pc_id}")
        return ""

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
