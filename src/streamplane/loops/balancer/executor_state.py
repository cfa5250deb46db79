"""What the executor records: its config, the state of an execution and of each move, the
state file, and the pure transitions between states (no I/O).

The state file is the executor's memory: it is written atomically before each request
that changes the cluster, so an executor started on it after a crash knows what may be
moving (see ``executor.py``).
"""

from __future__ import annotations

import os
import time
import uuid
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, computed_field

from streamplane.loops.balancer.plan import PartitionMove, Plan
from streamplane.loops.balancer.reassign import TP, Ongoing, PartitionState
from streamplane.settings import REPLICATION_THROTTLE_BYTES_PER_S

MB = 1024 * 1024
STATE_VERSION = 1


class ExecutorConfig(BaseModel):
    """How fast and how much at once. Stored in the state file; a restarted executor
    uses it unless it is given a new one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_partitions_in_flight: int = Field(default=10, ge=1)
    #: the sum of the bytes to copy of one batch's moves (a batch has at least one move)
    max_bytes_in_flight: int | None = Field(default=None, ge=1)
    #: replication throttle per broker, bytes/s, for leaders and followers; None: none
    throttle_bytes_per_s: int | None = Field(default=REPLICATION_THROTTLE_BYTES_PER_S, ge=1)
    poll_interval_s: float = Field(default=1.0, gt=0)
    #: how long a preferred leader election may keep failing before we stop asking
    election_timeout_s: float = Field(default=60.0, gt=0)
    #: a move that copies nothing for this long is cancelled as stuck; None: never
    stall_timeout_s: float | None = Field(default=600.0, gt=0)
    #: how long the cluster may keep failing our requests before the execution fails
    give_up_after_s: float = Field(default=120.0, gt=0)
    #: bound of each admin request
    request_timeout_s: float = Field(default=10.0, gt=0)


class Phase(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"  # in-flight moves finish; no new batch starts
    CANCELLING = "cancelling"  # in-flight reassignments are being cancelled
    ROLLING_BACK = "rolling_back"  # cancelling in-flight moves, moving finished ones back
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"


TERMINAL = frozenset({Phase.COMPLETED, Phase.CANCELLED, Phase.ROLLED_BACK, Phase.FAILED})


class MoveStatus(StrEnum):
    PENDING = "pending"  # not started
    IN_FLIGHT = "in_flight"  # on its way to the planned replicas
    DONE = "done"  # on the planned replicas; replicas[0] leads
    REVERTING = "reverting"  # on its way back to the old replicas
    REVERTED = "reverted"  # was done, is back on the old replicas (rollback)
    CANCELLED = "cancelled"  # never finished: on the old replicas
    SKIPPED = "skipped"  # the partition did not look as the plan expected; not touched
    FAILED = "failed"  # Kafka refused it, or it got stuck and was cancelled; see error


ACTIVE = frozenset({MoveStatus.IN_FLIGHT, MoveStatus.REVERTING})


class OnRestart(StrEnum):
    """What an executor started on an unfinished state file does with it."""

    RESUME = "resume"
    CANCEL = "cancel"
    ROLLBACK = "rollback"


class ExecutorError(Exception):
    """An execution cannot start or go on; the message says why and what to do."""


class PlanError(ExecutorError, ValueError):
    """The plan cannot be executed on this cluster as it is."""


class ForeignReassignmentsError(ExecutorError):
    """The cluster is already moving partitions, and not for us."""


class ExecutionInProgressError(ExecutorError):
    """The state file holds an unfinished execution of another plan."""


class MoveProgress(BaseModel):
    """One move of the plan and where it stands."""

    move: PartitionMove
    status: MoveStatus = MoveStatus.PENDING
    batch: int | None = None
    #: the replica list we are driving the partition to, while active
    goal: tuple[int, ...] | None = None
    #: the status it gets once it is on ``goal`` with ``goal[0]`` leading
    settle_as: MoveStatus | None = None
    #: a cancel was asked for; the status it gets if it lands back where it came from
    cancel_as: MoveStatus | None = None
    bytes_total: int = 0
    bytes_moved: int = 0
    started_at: float | None = None
    progress_at: float | None = None
    reassigned_at: float | None = None
    finished_at: float | None = None
    error: str | None = None

    @property
    def tp(self) -> TP:
        return (self.move.topic, self.move.partition)

    @property
    def source(self) -> tuple[int, ...]:
        """Where an active move comes from: the other end of ``goal``."""
        return self.move.old_replicas if self.goal == self.move.replicas else self.move.replicas

    def aim(self, goal: tuple[int, ...], settle_as: MoveStatus) -> None:
        self.goal, self.settle_as = goal, settle_as
        self.status = MoveStatus.IN_FLIGHT if goal == self.move.replicas else MoveStatus.REVERTING
        self.reassigned_at = None

    def settle(self, status: MoveStatus, now: float, error: str | None = None) -> None:
        self.status = status
        self.goal = self.settle_as = self.cancel_as = None
        self.finished_at = now
        if error is not None:
            self.error = error
        self.bytes_moved = self.bytes_total if status == MoveStatus.DONE else 0


class Throttles(BaseModel):
    """The throttle configs we set and must remove, recorded before they are set.

    While moves run, the executor owns the throttle rates of the brokers involved and
    removes them afterwards (a rate set by hand before is not restored: it throttles
    nothing without throttled replicas, and reading it back is unreliable because a
    broker answers from its own, possibly lagging, view of the cluster's configs).
    """

    #: brokers whose leader and follower rates we set
    brokers: list[int] = Field(default_factory=list)
    rate: int | None = None
    #: topic -> config -> the "partition:broker" entries we added to it
    topics: dict[str, dict[str, list[str]]] = Field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.brokers and not self.topics


class ExecutionState(BaseModel):
    """An execution of one plan: what is done, what is in flight, and how far along."""

    version: int = STATE_VERSION
    execution_id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    plan: Plan
    config: ExecutorConfig
    phase: Phase = Phase.RUNNING
    moves: list[MoveProgress]
    #: the number of the batch in flight (or last in flight); 0 before the first
    batch: int = 0
    throttles: Throttles = Field(default_factory=Throttles)
    #: the execution is cleaning up after an error; it ends as FAILED
    failing: bool = False
    started_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)
    finished_at: float | None = None
    #: what the executor did last, in a sentence
    message: str = ""
    error: str | None = None

    def count(self, *statuses: MoveStatus) -> int:
        return sum(1 for m in self.moves if m.status in statuses)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def moves_total(self) -> int:
        return len(self.moves)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def moves_done(self) -> int:
        return self.count(MoveStatus.DONE)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def moves_in_flight(self) -> int:
        return self.count(*ACTIVE)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def moves_failed(self) -> int:
        return self.count(MoveStatus.FAILED)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def bytes_total(self) -> int:
        return sum(m.bytes_total for m in self.moves if m.status != MoveStatus.SKIPPED)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def bytes_moved(self) -> int:
        return sum(m.bytes_moved for m in self.moves)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def eta_s(self) -> float | None:
        """Seconds left at the pace so far (bytes if the plan copies any, else moves)."""
        if self.phase != Phase.RUNNING:
            return None
        if self.bytes_total:
            done, total = self.bytes_moved, self.bytes_total
        else:
            done, total = self.moves_done, self.count(MoveStatus.PENDING, *ACTIVE, MoveStatus.DONE)
        if done <= 0 or total <= 0:
            return None
        elapsed = max(0.0, time.time() - self.started_at)
        return round(elapsed * (total - done) / done, 1)

    @property
    def in_flight(self) -> list[TP]:
        return [m.tp for m in self.moves if m.status in ACTIVE]

    @property
    def settled(self) -> bool:
        """Finished, with nothing left in flight and no throttle left behind."""
        return self.phase in TERMINAL and not self.in_flight and self.throttles.empty


# ---- the state file ----------------------------------------------------------------


def load_state(path: Path) -> ExecutionState | None:
    """The execution recorded in ``path``, or None if there is none."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return ExecutionState.model_validate_json(text)
    except ValueError as exc:
        raise ExecutorError(f"the executor state file {path} is not valid ({exc}); move it away "
                            "after checking the cluster for reassignments in progress") from None


def save_state(path: Path, state: ExecutionState) -> None:
    """Write ``state`` so that ``path`` holds either the old or the new one, whole."""
    state.updated_at = time.time()
    data = state.model_dump_json(indent=2).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# ---- transitions (no I/O) ------------------------------------------------------------


def assess(m: MoveProgress, cur: PartitionState | None, ongoing: Ongoing | None, now: float) -> str:
    """What to do next for an active move, given the cluster; settles it when it is over.

    Returns "cancel", "issue", "elect", "copying" or "wait".
    """
    assert m.goal is not None and m.settle_as is not None
    if cur is None:
        m.settle(MoveStatus.SKIPPED, now, error=f"{m.tp[0]}-{m.tp[1]} was deleted while moving")
        return "settled"
    goal, source = m.goal, m.source
    replicas = set(cur.replicas)
    if m.cancel_as is not None:
        if ongoing is not None:
            return "cancel"
        on_goal = cur.replicas == goal or (replicas == set(goal) and set(goal) != set(source))
        if not on_goal and replicas == set(source):
            m.aim(source, m.cancel_as)
        elif not on_goal:
            return "wait"  # metadata still shows the moment of the cancel
        m.cancel_as = None
        goal, source = m.goal, m.source
        assert goal is not None
    if ongoing is not None:
        if set(ongoing.target) == set(goal):
            return "copying"
        m.settle(MoveStatus.FAILED, now, error=f"another reassignment (to {list(ongoing.target)}) took "
                 f"over {m.tp[0]}-{m.tp[1]}; left to it")
        return "settled"
    if cur.replicas == goal:
        if cur.leader == goal[0]:
            assert m.settle_as is not None
            m.settle(m.settle_as, now)
            return "settled"
        m.reassigned_at = m.reassigned_at or now
        return "elect"
    if replicas <= set(source) | set(goal):
        # not started yet, only the order differs, or the metadata lags: (re)issuing is
        # harmless, the controller ignores a reassignment to where a partition already is
        return "issue"
    m.settle(MoveStatus.FAILED, now, error=f"{m.tp[0]}-{m.tp[1]} is now on {list(cur.replicas)}, "
             f"neither {list(source)} nor {list(goal)}; left alone")
    return "settled"


def enter_phase(state: ExecutionState, phase: Phase) -> None:
    """Switch to ``phase`` (a request of pause, resume, cancel or rollback)."""
    if state.phase in TERMINAL and phase != Phase.ROLLING_BACK and not state.failing:
        return
    if phase == Phase.PAUSED and state.phase != Phase.RUNNING:
        return
    if phase == Phase.RUNNING and state.phase != Phase.PAUSED:
        return
    if phase == Phase.CANCELLING:
        for m in state.moves:
            if m.status in ACTIVE and m.cancel_as is None:
                m.cancel_as = MoveStatus.CANCELLED if m.status == MoveStatus.IN_FLIGHT else MoveStatus.DONE
    if phase == Phase.ROLLING_BACK:
        for m in state.moves:
            if m.status == MoveStatus.IN_FLIGHT and m.cancel_as is None:
                m.cancel_as = MoveStatus.CANCELLED
    state.phase = phase
