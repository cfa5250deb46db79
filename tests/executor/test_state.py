"""The executor's state file and progress figures, without a cluster."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from streamplane.kafka.settings import ClientSettings
from streamplane.loops.balancer.executor import Executor
from streamplane.loops.balancer.executor_state import (
    ExecutionInProgressError,
    ExecutionState,
    ExecutorConfig,
    MoveProgress,
    MoveStatus,
    Phase,
    load_state,
    save_state,
)
from streamplane.loops.balancer.plan import PartitionMove, Plan
from streamplane.loops.balancer.reassign import ReassignmentAdmin


def plan_of(n: int, topic: str = "t") -> Plan:
    return Plan(cluster_id="c", moves=tuple(
        PartitionMove(topic=topic, partition=p, old_replicas=(1, 2, 3), replicas=(4, 2, 3))
        for p in range(n)))


def state_of(plan: Plan) -> ExecutionState:
    return ExecutionState(plan=plan, config=ExecutorConfig(),
                          moves=[MoveProgress(move=m, bytes_total=100) for m in plan.moves])


@pytest.mark.timeout(30)
def test_state_file_round_trips_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "execution.json"
    assert load_state(path) is None
    state = state_of(plan_of(3))
    state.moves[0].status = MoveStatus.IN_FLIGHT
    state.moves[0].goal = (4, 2, 3)
    state.throttles.brokers = [1, 4]
    save_state(path, state)
    save_state(path, state)
    assert [p.name for p in path.parent.iterdir()] == ["execution.json"]
    again = load_state(path)
    assert again is not None
    assert again.plan == state.plan
    assert again.in_flight == [("t", 0)]
    assert again.throttles.brokers == [1, 4]
    assert not again.settled


@pytest.mark.timeout(30)
def test_progress_counts_moves_and_bytes_and_estimates_the_time_left() -> None:
    state = state_of(plan_of(4))
    state.started_at = time.time() - 10
    assert (state.moves_total, state.moves_done, state.bytes_total, state.bytes_moved) == (4, 0, 400, 0)
    assert state.eta_s is None
    state.moves[0].settle(MoveStatus.DONE, time.time())
    state.moves[1].status, state.moves[1].bytes_moved = MoveStatus.IN_FLIGHT, 50
    assert (state.moves_done, state.moves_in_flight, state.bytes_moved) == (1, 1, 150)
    assert state.eta_s is not None and 15 < state.eta_s < 25  # 150 B in 10 s, 250 B to go
    dumped = state.model_dump(mode="json")
    assert dumped["moves_done"] == 1 and dumped["bytes_total"] == 400


@pytest.mark.timeout(30)
def test_will_not_start_another_plan_over_an_unfinished_execution(tmp_path: Path) -> None:
    path = tmp_path / "execution.json"
    unfinished = state_of(plan_of(2))
    unfinished.phase = Phase.PAUSED
    save_state(path, unfinished)
    # never contacted: the state file alone says no
    admin = ReassignmentAdmin(ClientSettings("127.0.0.1:9", "nobody", "nothing-at-all"), timeout=1)
    try:
        with pytest.raises(ExecutionInProgressError, match="unfinished execution of another plan"):
            asyncio.run(Executor(admin, path).run(plan_of(1, topic="other")))
    finally:
        admin.close()
    assert load_state(path) == unfinished


def _stepped_plan() -> Plan:
    """Leadership off broker 3, then its replica to broker 4 (what draining broker 3 plans)."""
    return Plan(cluster_id="c", moves=(
        PartitionMove(topic="t", partition=0, old_replicas=(3, 1, 2), replicas=(1, 3, 2)),
        PartitionMove(topic="t", partition=0, old_replicas=(1, 3, 2), replicas=(1, 4, 2)),
        PartitionMove(topic="t", partition=1, old_replicas=(1, 2, 3), replicas=(1, 2, 4)),
    ))


@pytest.mark.timeout(30)
def test_a_partition_moved_in_steps_moves_one_step_at_a_time(tmp_path: Path) -> None:
    executor = Executor(ReassignmentAdmin(ClientSettings("127.0.0.1:1", "u", "p")), tmp_path / "s.json")
    state = state_of(_stepped_plan())
    first = executor._next_batch(state)
    assert [(m.tp, m.move.replicas) for m in first] == [(("t", 0), (1, 3, 2)), (("t", 1), (1, 2, 4))]
    first[0].status = first[1].status = MoveStatus.IN_FLIGHT
    assert executor._next_batch(state) == []  # step 2 of t-0 waits while step 1 runs
    first[0].status = MoveStatus.DONE
    assert [m.move.replicas for m in executor._next_batch(state)] == [(1, 4, 2)]
    # rolled back, the later step goes back before the earlier one
    for m in state.moves:
        m.status = MoveStatus.DONE
    state.phase = Phase.ROLLING_BACK
    back = executor._next_batch(state)
    assert [m.move.replicas for m in back] == [(1, 2, 4), (1, 4, 2)]


@pytest.mark.timeout(30)
def test_a_plan_whose_steps_do_not_chain_is_refused() -> None:
    from streamplane.loops.balancer.executor import _validate
    from streamplane.loops.balancer.executor_state import PlanError

    _validate(_stepped_plan(), {1, 2, 3, 4})
    broken = Plan(cluster_id="c", moves=(
        PartitionMove(topic="t", partition=0, old_replicas=(3, 1, 2), replicas=(1, 3, 2)),
        PartitionMove(topic="t", partition=0, old_replicas=(3, 1, 2), replicas=(1, 4, 2)),
    ))
    with pytest.raises(PlanError, match="does not start where the first ends"):
        _validate(broken, {1, 2, 3, 4})
