"""The executor: applies a ``Plan`` to a real cluster, as Cruise Control's executor does.

Moves run in batches (at most ``max_partitions_in_flight`` partitions and
``max_bytes_in_flight`` bytes at once) as KIP-455 reassignments, under replication
throttles that exist only while a batch is in flight. When a partition's replicas are in
place a preferred leader election makes ``replicas[0]`` its leader. An execution can be
paused (in-flight moves finish, no new batch starts), cancelled (in-flight reassignments
are cancelled, which reverts them) or rolled back (cancelled, and finished moves moved back).

Everything the executor knows is in a JSON state file (``executor_state.py``), written
atomically before each request that changes the cluster. An executor started on the same
file after a crash reads it, looks at the cluster, and resumes, cancels or rolls back from
there.

``python -m streamplane.cli.executor --help`` runs one execution in its own process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from streamplane.kafka.errors import AdminError
from streamplane.loops.balancer.executor_state import (
    ACTIVE,
    TERMINAL,
    ExecutionInProgressError,
    ExecutionState,
    ExecutorConfig,
    ExecutorError,
    ForeignReassignmentsError,
    MoveProgress,
    MoveStatus,
    OnRestart,
    Phase,
    PlanError,
    assess,
    enter_phase,
    load_state,
    save_state,
)
from streamplane.loops.balancer.plan import Plan
from streamplane.loops.balancer.reassign import (
    ALL_REPLICAS,
    BROKER_THROTTLE_CONFIGS,
    FOLLOWER_REPLICAS,
    LEADER_REPLICAS,
    TOPIC_THROTTLE_CONFIGS,
    TP,
    Ongoing,
    PartitionState,
    ReassignmentAdmin,
)

T = TypeVar("T")
log = logging.getLogger(__name__)

_NO_REASSIGNMENT = "NO_REASSIGNMENT_IN_PROGRESS"


class Executor:
    """Runs one plan at a time against one cluster, recording everything in ``state_path``.

    ``await run(plan)`` returns when the execution is over (completed, cancelled, rolled
    back or failed); ``pause()``, ``resume()``, ``cancel()`` and ``rollback()`` may be
    called meanwhile from the same event loop, and ``state`` read at any time.
    """

    def __init__(self, admin: ReassignmentAdmin, state_path: Path,
                 config: ExecutorConfig | None = None) -> None:
        self._admin = admin
        self._path = state_path
        self._config = config
        self._state: ExecutionState | None = None
        self._request: Phase | None = None
        self._wake = asyncio.Event()
        self._errors_since: float | None = None

    # ---- public surface ------------------------------------------------------------

    @property
    def state(self) -> ExecutionState | None:
        """A copy of the execution's state, or None before ``run`` loaded or made one."""
        return None if self._state is None else self._state.model_copy(deep=True)

    def pause(self) -> None:
        """Start no new batch; the moves in flight finish."""
        self._ask(Phase.PAUSED)

    def resume(self) -> None:
        self._ask(Phase.RUNNING)

    def cancel(self) -> None:
        """Cancel the reassignments in flight (Kafka reverts them) and stop."""
        self._ask(Phase.CANCELLING)

    def rollback(self) -> None:
        """Cancel the reassignments in flight and move finished moves back."""
        self._ask(Phase.ROLLING_BACK)

    async def run(self, plan: Plan | None = None, on_restart: OnRestart = OnRestart.RESUME) -> ExecutionState:
        """Execute ``plan``, or finish the execution recorded in the state file.

        An unfinished execution in the state file is resumed, cancelled or rolled back
        (``on_restart``) first; it must be of the same plan if ``plan`` is given. With
        ``OnRestart.ROLLBACK`` a finished execution is rolled back too.
        """
        self._state = await self._prepare(plan, on_restart)
        await self._save()
        try:
            while self._state.phase not in TERMINAL:
                await self._turn()
                if self._state.phase in TERMINAL:
                    break
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._state.config.poll_interval_s)
        finally:
            await self._save()
        return self.state or self._state

    # ---- starting and restarting ---------------------------------------------------

    async def _prepare(self, plan: Plan | None, on_restart: OnRestart) -> ExecutionState:
        recorded = await asyncio.to_thread(load_state, self._path)
        if recorded is not None and self._config is not None:
            recorded.config = self._config
        if recorded is not None and not recorded.settled:
            if plan is not None and plan != recorded.plan:
                raise ExecutionInProgressError(
                    f"{self._path} holds an unfinished execution of another plan (cluster "
                    f"{recorded.plan.cluster_id}, {recorded.moves_total} moves, {recorded.phase}); "
                    "finish it first: run the executor on it without a plan to resume it, or "
                    "ask for a cancel or a rollback")
            return self._recover(recorded, on_restart)
        if plan is None:
            if recorded is not None and on_restart == OnRestart.ROLLBACK and recorded.count(MoveStatus.DONE):
                # a finished execution can be rolled back too
                return self._recover(recorded, on_restart)
            if recorded is not None:
                return recorded
            raise ExecutorError(f"there is no execution in {self._path} to resume; give a plan")
        return await self._new_execution(plan)

    def _recover(self, state: ExecutionState, on_restart: OnRestart) -> ExecutionState:
        state.finished_at = None
        now = time.time()
        for m in state.moves:
            if m.status in ACTIVE:
                m.progress_at = now  # the time nobody watched does not count as stuck
        if on_restart == OnRestart.ROLLBACK:
            state.failing = False  # a rollback cleans up as it goes
            enter_phase(state, Phase.ROLLING_BACK)
        elif state.phase == Phase.FAILED or state.failing:
            # a failed execution that could not clean up: clean up now
            state.failing = True
            enter_phase(state, Phase.CANCELLING)
        elif on_restart == OnRestart.CANCEL:
            enter_phase(state, Phase.CANCELLING)
        state.message = (f"restarted on {self._path} ({on_restart.value}): {state.moves_done} of "
                         f"{state.moves_total} moves done, {state.moves_in_flight} in flight; now {state.phase}")
        log.info("%s", state.message)
        return state

    async def _new_execution(self, plan: Plan) -> ExecutionState:
        brokers = await self._call(self._admin.brokers)
        _validate(plan, brokers)
        foreign = await self._call(self._admin.ongoing)
        if foreign:
            raise ForeignReassignmentsError(
                "not starting: the cluster is already reassigning partitions that this executor "
                f"did not start: {_describe_ongoing(foreign)}. Wait for them to finish or cancel "
                "them (kafka-reassign-partitions --cancel), then try again")
        config = self._config or ExecutorConfig()
        state = ExecutionState(plan=plan, config=config, moves=[MoveProgress(move=m) for m in plan.moves])
        now = time.time()
        for m in state.moves:
            if m.move.replicas == m.move.old_replicas:
                m.settle(MoveStatus.DONE, now, error=None)
        await self._measure(state.moves, forward=True)
        state.message = (f"starting: {len(plan.moves)} moves, {_size(state.bytes_total)} to copy, "
                         f"at most {config.max_partitions_in_flight} partitions at once")
        log.info("execution %s of a plan for %s: %s", state.execution_id, plan.cluster_id, state.message)
        return state

    # ---- one turn of the loop ------------------------------------------------------

    async def _turn(self) -> None:
        state = self._require_state()
        before = state.message
        try:
            if self._request is not None:
                enter_phase(state, self._request)
                self._request = None
            state.message = await self._step(state)
            self._errors_since = None
        except AdminError as exc:
            state.message = self._on_error(state, exc)
        if state.message != before:
            log.info("%s", state.message)
        await self._save()

    async def _step(self, state: ExecutionState) -> str:
        """Look at the cluster, drive the moves in flight, start the next batch or finish."""
        active = [m for m in state.moves if m.status in ACTIVE]
        if active:
            said = await self._drive(state, active)
            if state.in_flight:
                return said
        if not state.throttles.empty:
            await self._release_throttles(state)
        if state.phase == Phase.PAUSED:
            return f"paused: {state.moves_done} of {state.moves_total} moves done, none in flight"
        if state.phase in (Phase.RUNNING, Phase.ROLLING_BACK):
            batch = self._next_batch(state)
            if batch:
                return await self._start_batch(state, batch)
        return self._finish(state)

    def _on_error(self, state: ExecutionState, exc: AdminError) -> str:
        now = time.monotonic()
        if self._errors_since is None:
            self._errors_since = now
        waited = now - self._errors_since
        if exc.retriable and waited < state.config.give_up_after_s:
            return f"retrying: {exc}"
        self._errors_since = None
        if state.phase == Phase.CANCELLING or state.failing:
            state.phase, state.finished_at = Phase.FAILED, time.time()
            state.error = (f"{state.error or exc}; could not clean up ({exc}): run the executor on "
                           f"{self._path} again to finish cancelling")
            return f"failed: {state.error}"
        state.error = f"gave up after {waited:.0f} s: {exc}" if exc.retriable else str(exc)
        state.failing = True
        enter_phase(state, Phase.CANCELLING)
        return f"failing ({state.error}); cancelling the moves in flight"

    # ---- moves in flight -----------------------------------------------------------

    async def _drive(self, state: ExecutionState, active: list[MoveProgress]) -> str:
        tps = [m.tp for m in active]
        current = await self._call(self._admin.partitions, {t for t, _ in tps})
        ongoing = await self._call(self._admin.ongoing, tps)
        now = time.time()
        todo: dict[str, list[MoveProgress]] = {}
        for m in active:
            todo.setdefault(assess(m, current.get(m.tp), ongoing.get(m.tp), now), []).append(m)
        if todo.get("cancel"):
            await self._cancel(todo["cancel"])
        if todo.get("issue"):
            await self._issue(todo["issue"], now)
        if todo.get("elect"):
            await self._elect(todo["elect"], now)
        if todo.get("copying"):
            await self._track_bytes(state, todo["copying"], current, now)
        in_flight = state.moves_in_flight
        return (f"batch {state.batch}: {in_flight} move(s) in flight, {state.moves_done} of "
                f"{state.moves_total} done, {_size(state.bytes_moved)} of {_size(state.bytes_total)} copied"
                + (f" ({state.phase})" if state.phase != Phase.RUNNING else ""))

    async def _cancel(self, moves: list[MoveProgress]) -> None:
        answer = await self._call(self._admin.reassign, {m.tp: None for m in moves})
        for m in moves:
            err = answer.get(m.tp)
            if err not in (None, _NO_REASSIGNMENT):
                log.warning("cancelling the reassignment of %s-%d: %s", *m.tp, err)

    async def _issue(self, moves: list[MoveProgress], now: float) -> None:
        answer = await self._call(self._admin.reassign, {m.tp: m.goal for m in moves})
        for m in moves:
            err = answer.get(m.tp)
            if err is not None:
                m.settle(MoveStatus.FAILED, now, error=f"Kafka refused to move {m.tp[0]}-{m.tp[1]} to "
                         f"{list(m.goal or ())}: {err}")

    async def _elect(self, moves: list[MoveProgress], now: float) -> None:
        answer = await self._call(self._admin.elect_preferred, [m.tp for m in moves])
        for m in moves:
            err = answer.get(m.tp)
            assert m.settle_as is not None
            if err is None:
                m.settle(m.settle_as, now)
            elif now - (m.reassigned_at or now) > self._require_state().config.election_timeout_s:
                leader = (m.goal or (None,))[0]
                m.settle(m.settle_as, now, error=f"replicas in place, but broker {leader} could not "
                         f"take leadership ({err}); run a preferred leader election later")

    async def _track_bytes(self, state: ExecutionState, moves: list[MoveProgress],
                           current: dict[TP, PartitionState], now: float) -> None:
        brokers = {b for m in moves for b in current[m.tp].replicas}
        try:
            sizes = await self._call(self._admin.replica_sizes, [m.tp for m in moves], brokers)
        except AdminError as exc:
            # a broker that does not answer is a reason to be stuck, not to stop looking
            log.debug("cannot measure progress: %s", exc)
            sizes = {}
        stall = state.config.stall_timeout_s
        for m in moves:
            t, p = m.tp
            source_size = max((sizes.get((t, p, b), 0) for b in m.source), default=0)
            added = [b for b in (m.goal or ()) if b not in m.source]
            copied = sum(min(sizes.get((t, p, b), 0), source_size) for b in added)
            copied = min(copied, m.bytes_total) if m.bytes_total else copied
            if copied > m.bytes_moved or m.progress_at is None:
                m.progress_at = now
            m.bytes_moved = max(m.bytes_moved, copied)
            if stall is not None and now - m.progress_at > stall and m.cancel_as is None:
                m.error = f"stuck: nothing copied for {stall:g} s; cancelled"
                m.cancel_as = MoveStatus.FAILED

    # ---- batches -------------------------------------------------------------------

    def _next_batch(self, state: ExecutionState) -> list[MoveProgress]:
        if state.phase == Phase.RUNNING:
            candidates = [m for m in state.moves if m.status == MoveStatus.PENDING]
        else:  # rolling back: the finished moves, last first
            candidates = [m for m in reversed(state.moves)
                          if m.status == MoveStatus.DONE and m.move.replicas != m.move.old_replicas]
        cap_n, cap_bytes = state.config.max_partitions_in_flight, state.config.max_bytes_in_flight
        batch: list[MoveProgress] = []
        size = 0
        # a partition may be moved in steps (leadership off a draining broker, then its
        # replica): one step at a time, in plan order forward and the reverse order back
        active = {m.tp for m in state.moves if m.status in ACTIVE}
        if state.phase == Phase.RUNNING:
            first_pending: dict[TP, MoveProgress] = {}
            for m in state.moves:
                if m.status == MoveStatus.PENDING:
                    first_pending.setdefault(m.tp, m)
            candidates = [m for m in candidates if first_pending.get(m.tp) is m and m.tp not in active]
        else:
            last_done: dict[TP, MoveProgress] = {}
            for m in state.moves:
                if m.status in (MoveStatus.DONE, *ACTIVE):
                    last_done[m.tp] = m
            candidates = [m for m in candidates if last_done.get(m.tp) is m]
        taken: set[TP] = set()
        for m in candidates:
            if m.tp in taken:
                continue
            taken.add(m.tp)
            weight = m.bytes_total or m.move.bytes_to_move
            if batch and (len(batch) >= cap_n or (cap_bytes is not None and size + weight > cap_bytes)):
                break
            batch.append(m)
            size += weight
        return batch

    async def _start_batch(self, state: ExecutionState, batch: list[MoveProgress]) -> str:
        forward = state.phase == Phase.RUNNING
        foreign = await self._call(self._admin.ongoing)
        if foreign:
            state.error = ("another reassignment started meanwhile, not by this executor: "
                           f"{_describe_ongoing(foreign)}; not starting more moves beside it")
            state.failing = True
            enter_phase(state, Phase.CANCELLING)
            return f"failing: {state.error}"
        current = await self._measure(batch, forward)
        now = time.time()
        ready: list[MoveProgress] = []
        for m in batch:
            goal, source = (m.move.replicas, m.move.old_replicas) if forward \
                else (m.move.old_replicas, m.move.replicas)
            cur = current.get(m.tp)
            if cur is None:
                m.settle(MoveStatus.SKIPPED, now, error=f"{m.tp[0]}-{m.tp[1]} no longer exists")
            elif set(cur.replicas) not in (set(source), set(goal)):
                m.settle(MoveStatus.SKIPPED if forward else MoveStatus.FAILED, now,
                         error=f"{m.tp[0]}-{m.tp[1]} is on {list(cur.replicas)}, not on "
                         f"{list(source)} as expected; left alone")
            else:
                ready.append(m)
        if not ready:
            return f"skipped {len(batch)} move(s) that no longer match the cluster"
        state.batch += 1
        silent = await self._apply_throttles(state, ready, current)
        for m in [m for m in ready if set(silent) & set(m.move.replicas + m.move.old_replicas)]:
            ready.remove(m)
            m.settle(MoveStatus.FAILED, now, error=f"not started: broker(s) {sorted(silent)} did not "
                     f"answer when asked to throttle replication ({silent[min(silent)]})")
        for m in ready:
            m.aim(m.move.replicas if forward else m.move.old_replicas,
                  MoveStatus.DONE if forward else MoveStatus.REVERTED)
            m.batch, m.started_at, m.progress_at, m.error = state.batch, now, now, None
            m.bytes_moved = 0
        if not ready:
            return f"batch {state.batch}: no move could start"
        await self._save()  # before the request: a restart must know these may be moving
        await self._issue(ready, now)
        verb = "moving" if forward else "moving back"
        return (f"batch {state.batch}: {verb} {len(ready)} partition(s), "
                f"{_size(sum(m.bytes_total for m in ready))} to copy")

    async def _measure(self, moves: Sequence[MoveProgress], forward: bool) -> dict[TP, PartitionState]:
        """Each move's bytes to copy: its partition's size times the replicas it adds."""
        current = await self._call(self._admin.partitions, {m.tp[0] for m in moves})
        holders = {b for m in moves if m.tp in current for b in current[m.tp].replicas}
        try:
            sizes = await self._call(self._admin.replica_sizes, [m.tp for m in moves], holders)
        except AdminError as exc:
            log.debug("cannot measure partition sizes: %s", exc)
            sizes = {}
        for m in moves:
            cur = current.get(m.tp)
            if cur is None:
                continue
            goal = m.move.replicas if forward else m.move.old_replicas
            adds = sum(1 for b in goal if b not in cur.replicas)
            size = max((sizes.get((m.tp[0], m.tp[1], b), -1) for b in cur.replicas), default=-1)
            m.bytes_total = size * adds if size >= 0 else m.move.bytes_to_move
        return current

    def _finish(self, state: ExecutionState) -> str:
        now = time.time()
        for m in state.moves:
            if m.status == MoveStatus.PENDING:
                m.settle(MoveStatus.CANCELLED, now, error="not started: the execution stopped first")
        if state.failing:
            state.phase = Phase.FAILED
        else:
            state.phase = {Phase.RUNNING: Phase.COMPLETED, Phase.CANCELLING: Phase.CANCELLED,
                           Phase.ROLLING_BACK: Phase.ROLLED_BACK}.get(state.phase, state.phase)
        state.finished_at = now
        failed = [m for m in state.moves if m.status == MoveStatus.FAILED]
        if failed and not state.error:
            state.error = f"{len(failed)} move(s) failed; the first: {failed[0].error}"
        counts = ", ".join(f"{n} {s.value}" for s in MoveStatus if (n := state.count(s)))
        said = f"{state.phase}: {counts or 'no moves'}"
        return f"{said}; {state.error}" if state.error else said

    # ---- throttles -----------------------------------------------------------------

    async def _apply_throttles(self, state: ExecutionState, moves: list[MoveProgress],
                               current: dict[TP, PartitionState]) -> dict[int, AdminError]:
        """Throttle the replicas that copy data: on the leader side every current replica
        (any may lead), on the follower side the new ones; and rate-limit their brokers.
        Returns the brokers that did not take their rate (moves touching them must wait)."""
        rate = state.config.throttle_bytes_per_s
        copying = [m for m in moves if set(m.move.replicas) != set(m.move.old_replicas)]
        if rate is None or not copying:
            return {}
        wanted: dict[str, dict[str, set[str]]] = {}
        brokers: set[int] = set()
        for m in copying:
            t, p = m.tp
            holders = current[m.tp].replicas
            adding = [b for b in m.move.replicas + m.move.old_replicas if b not in holders]
            topic = wanted.setdefault(t, {LEADER_REPLICAS: set(), FOLLOWER_REPLICAS: set()})
            topic[LEADER_REPLICAS].update(f"{p}:{b}" for b in holders)
            topic[FOLLOWER_REPLICAS].update(f"{p}:{b}" for b in adding)
            brokers.update(holders, adding)
        before = await self._call(self._admin.topic_configs, wanted, TOPIC_THROTTLE_CONFIGS)
        record = state.throttles
        record.rate = rate
        record.brokers = sorted(brokers | set(record.brokers))
        appends: dict[str, dict[str, list[str]]] = {}
        for t, by_key in sorted(wanted.items()):
            for key, entries in by_key.items():
                have = _entries(before.get(t, {}).get(key))
                new = sorted(entries - have)
                if ALL_REPLICAS in have or not new:
                    continue
                ours = record.topics.setdefault(t, {}).setdefault(key, [])
                ours.extend(e for e in new if e not in ours)
                appends.setdefault(t, {})[key] = new
        await self._save()  # before setting them: a restart must be able to remove them
        silent = await self._call(self._admin.alter_broker_configs,
                                  {b: dict.fromkeys(BROKER_THROTTLE_CONFIGS, str(rate)) for b in brokers})
        await self._call(self._admin.append_topic_configs, appends)
        return silent

    async def _release_throttles(self, state: ExecutionState) -> None:
        """Remove the throttle entries we added to topics, and the rates we set on brokers."""
        record = state.throttles
        if record.topics:
            now = await self._call(self._admin.topic_configs, record.topics, TOPIC_THROTTLE_CONFIGS)
            changes: dict[str, dict[str, str | None]] = {}
            for t, ours in record.topics.items():
                for key, entries in ours.items():
                    # write even if our entries do not show yet: the broker we asked may lag
                    left = _entries(now.get(t, {}).get(key)) - set(entries)
                    changes.setdefault(t, {})[key] = ",".join(sorted(left)) if left else None
            await self._call(self._admin.alter_topic_configs, changes)
            record.topics = {}
            await self._save()
        if record.brokers:
            silent = await self._call(self._admin.alter_broker_configs,
                                      {b: dict.fromkeys(BROKER_THROTTLE_CONFIGS) for b in record.brokers})
            record.brokers = sorted(silent)
            record.rate = record.rate if silent else None
            await self._save()
            if silent:
                # kept in the record: tried again, and on a restart
                first = silent[min(silent)]
                raise AdminError(f"cannot remove the replication throttle from broker(s) {sorted(silent)}: "
                                 f"{first}", first.kafka_error, retriable=True)

    # ---- plumbing ------------------------------------------------------------------

    def _ask(self, phase: Phase) -> None:
        self._request = phase
        self._wake.set()

    def _require_state(self) -> ExecutionState:
        if self._state is None:
            raise ExecutorError("no execution is loaded; call run() first")
        return self._state

    async def _save(self) -> None:
        if self._state is not None:
            await asyncio.to_thread(save_state, self._path, self._state)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """A blocking admin call, in a thread, bounded even if the client is not."""
        state = self._state
        timeout = (state.config if state else self._config or ExecutorConfig()).request_timeout_s
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn, *args), timeout * 3 + 5)
        except TimeoutError:
            raise AdminError(f"the cluster did not answer {getattr(fn, '__name__', fn)} in time",
                             "_TIMED_OUT", retriable=True) from None


# ---- checks and wording (no I/O) -----------------------------------------------------


def _validate(plan: Plan, brokers: set[int]) -> None:
    seen: set[TP] = set()
    last: dict[TP, tuple[int, ...]] = {}
    problems = []
    for m in plan.moves:
        tp = (m.topic, m.partition)
        name = f"{m.topic}-{m.partition}"
        if tp in seen and last[tp] != m.old_replicas:
            problems.append(f"{name} is moved twice, and its second move does not start where the "
                            f"first ends ({list(last[tp])} vs {list(m.old_replicas)})")
        seen.add(tp)
        last[tp] = m.replicas
        if not m.replicas:
            problems.append(f"{name} has no target replicas")
        if len(set(m.replicas)) != len(m.replicas):
            problems.append(f"{name} lists a broker twice in {list(m.replicas)}")
        unknown = sorted(set(m.replicas) - brokers)
        if unknown:
            problems.append(f"{name} would go to broker(s) {unknown}, which the cluster does not have "
                            f"(it has {sorted(brokers)})")
    if problems:
        more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise PlanError("cannot execute this plan: " + "; ".join(problems[:5]) + more)


def _entries(value: str | None) -> set[str]:
    return {e.strip() for e in (value or "").split(",") if e.strip()}


def _describe_ongoing(ongoing: dict[TP, Ongoing], limit: int = 5) -> str:
    shown = [f"{t}-{p} (to {list(o.target)}, adding {list(o.adding)}, removing {list(o.removing)})"
             for (t, p), o in sorted(ongoing.items())[:limit]]
    more = f" and {len(ongoing) - limit} more" if len(ongoing) > limit else ""
    return ", ".join(shown) + more


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"
