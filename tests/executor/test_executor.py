"""The executor against a real 4-broker cluster: moves onto broker 4 and back under load,
leader-only moves, batching caps, pause, cancel, foreign reassignments, and kill -9 of the
executor's own process followed by a resume or a rollback."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.structs import TopicPartition

from streamplane.cli.executor import PASSWORD_ENV
from streamplane.loops.balancer.executor import Executor
from streamplane.loops.balancer.executor_state import (
    MB,
    ExecutionState,
    ExecutorConfig,
    ForeignReassignmentsError,
    MoveStatus,
    Phase,
    PlanError,
    load_state,
)
from streamplane.loops.balancer.plan import PartitionMove, Plan
from streamplane.loops.balancer.reassign import ReassignmentAdmin
from streamplane.testing import SequenceProducer, consume_sequences, wait_for

from .conftest import Assignment, FourBrokers, as_assignment, holds, plan_for, until

FILLER_VALUE = -1


async def execute(cluster: FourBrokers, plan: Plan, path: Path, config: ExecutorConfig,
                  ) -> tuple[ExecutionState, list[ExecutionState]]:
    """Run ``plan`` to the end; returns the final state and the states seen on the way."""
    admin = cluster.executor_admin()
    seen: list[ExecutionState] = []
    try:
        executor = Executor(admin, path, config)
        task = asyncio.create_task(executor.run(plan))
        while not task.done():
            if (st := executor.state) is not None:
                seen.append(st)
            await asyncio.wait([task], timeout=0.1)
        return task.result(), seen
    finally:
        await asyncio.to_thread(admin.close)


def inverse(plan: Plan) -> Plan:
    return Plan(cluster_id=plan.cluster_id, moves=tuple(
        PartitionMove(topic=m.topic, partition=m.partition, old_replicas=m.replicas,
                      replicas=m.old_replicas, reason="back") for m in plan.moves))


# ---- moves ---------------------------------------------------------------------------


@pytest.mark.timeout(600)
def test_moves_onto_broker_4_and_back_while_producing(cluster: FourBrokers, tmp_path: Path) -> None:
    a_rows, b_rows = [[1, 2, 3], [2, 3, 1], [3, 1, 2]], [[1, 2, 3], [2, 3, 1]]
    a, b = cluster.create_topic(a_rows), cluster.create_topic(b_rows)
    filler = cluster.fill(a, 3, 2)
    cluster.fill(b, 2, 2)
    a_old, b_old = as_assignment(a_rows), as_assignment(b_rows)
    a_new = as_assignment([[4, 2, 3], [2, 4, 1], [3, 1, 4]])
    b_new = as_assignment([[4, 1, 2], [3, 4, 1]])
    there = plan_for({a: (a_old, a_new), b: (b_old, b_new)})
    path = tmp_path / "execution.json"

    producer = SequenceProducer(cluster.client_config(), a, rate_per_s=200).start()
    try:
        wait_for(lambda: len(producer.acked) >= 200, 60, "the producer to get going")
        config = ExecutorConfig(max_partitions_in_flight=2, throttle_bytes_per_s=2 * MB, poll_interval_s=0.3)
        state, seen = asyncio.run(execute(cluster, there, path, config))
        assert state.phase == Phase.COMPLETED, state.message
        assert (state.moves_done, state.moves_total, state.moves_failed) == (5, 5, 0)
        assert state.bytes_total > 5 * 1.5 * MB, "each move copies about 2 MiB"
        assert state.bytes_moved == state.bytes_total and state.eta_s is None
        assert max(s.moves_in_flight for s in seen) == 2
        assert sorted({m.batch or 0 for m in state.moves}) == [1, 2, 3]
        assert any(s.throttles.brokers and s.throttles.topics for s in seen), "moves ran throttled"
        assert any(0 < s.bytes_moved < s.bytes_total for s in seen), "progress was visible on the way"
        cluster.wait_assignment(a, a_new)
        cluster.wait_assignment(b, b_new)
        cluster.wait_clean([a, b])

        # back again, on the same state file; a bytes cap of 1 makes batches of one move
        config = ExecutorConfig(max_partitions_in_flight=10, max_bytes_in_flight=1,
                                throttle_bytes_per_s=4 * MB, poll_interval_s=0.3)
        state, seen = asyncio.run(execute(cluster, inverse(there), path, config))
        assert state.phase == Phase.COMPLETED, state.message
        assert state.moves_done == 5
        assert max(s.moves_in_flight for s in seen) == 1
        assert sorted(m.batch for m in state.moves if m.batch is not None) == [1, 2, 3, 4, 5]
        cluster.wait_assignment(a, a_old)
        cluster.wait_assignment(b, b_old)
        cluster.wait_clean([a, b])
        wait_for(lambda: len(producer.acked) >= producer.sent - 50, 30, "the producer to catch up")
    finally:
        producer.stop()
    assert producer.errors == []
    assert len(producer.acked) == producer.sent
    got = consume_sequences(cluster.client_config(), a, expect=len(producer.acked) + filler, timeout=120)
    sequences = [v for v in got if v != FILLER_VALUE]
    assert sorted(sequences) == sorted(producer.acked), "every acknowledged message is still there, once"


@pytest.mark.timeout(300)
def test_leader_only_moves_change_leaders_without_copying(cluster: FourBrokers, tmp_path: Path) -> None:
    rows = [[1, 2, 3], [2, 3, 4], [3, 4, 1]]
    topic = cluster.create_topic(rows)
    cluster.fill(topic, 3, 0.5)
    new = as_assignment([[2, 1, 3], [4, 3, 2], [1, 3, 4]])
    plan = plan_for({topic: (as_assignment(rows), new)})
    assert all(m.leader_only for m in plan.moves)

    state, seen = asyncio.run(execute(cluster, plan, tmp_path / "execution.json",
                                      ExecutorConfig(poll_interval_s=0.3)))
    assert state.phase == Phase.COMPLETED, state.message
    assert state.moves_done == 3
    assert state.bytes_total == 0
    assert all(s.throttles.empty for s in seen), "nothing to copy, so nothing to throttle"
    cluster.wait_assignment(topic, new)
    cluster.wait_clean([topic])


# ---- pause and cancel --------------------------------------------------------------


@pytest.mark.timeout(300)
def test_pause_lets_the_batch_finish_and_starts_nothing_until_resumed(cluster: FourBrokers,
                                                                      tmp_path: Path) -> None:
    rows = [[1, 2, 3], [2, 3, 1], [3, 1, 2], [1, 3, 2]]
    topic = cluster.create_topic(rows)
    cluster.fill(topic, 4, 3)
    new = as_assignment([[4, 2, 3], [2, 4, 1], [3, 4, 2], [4, 3, 2]])
    plan = plan_for({topic: (as_assignment(rows), new)})
    config = ExecutorConfig(max_partitions_in_flight=1, throttle_bytes_per_s=512 * 1024, poll_interval_s=0.3)

    async def scenario() -> ExecutionState:
        admin = cluster.executor_admin()
        try:
            executor = Executor(admin, tmp_path / "execution.json", config)
            task = asyncio.create_task(executor.run(plan))
            await until(lambda: (s := executor.state) is not None and s.moves_in_flight == 1, 60,
                        "the first move to be in flight")
            executor.pause()
            # no throttle stays while nothing moves
            paused = await until(lambda: (s := executor.state) is not None and s.phase == Phase.PAUSED
                                 and s.moves_in_flight == 0 and s.throttles.empty and s, 120,
                                 "the batch in flight to finish and its throttles to go")
            assert 1 <= paused.moves_done < 4
            await asyncio.to_thread(cluster.wait_clean, [topic])
            await holds(lambda: (s := executor.state) is not None and s.moves_done == paused.moves_done
                        and s.moves_in_flight == 0, 3, "nothing started while paused")
            assert not await asyncio.to_thread(cluster.ongoing)
            executor.resume()
            return await task
        finally:
            await asyncio.to_thread(admin.close)

    state = asyncio.run(scenario())
    assert state.phase == Phase.COMPLETED, state.message
    assert state.moves_done == 4
    cluster.wait_assignment(topic, new)
    cluster.wait_clean([topic])


@pytest.mark.timeout(300)
def test_cancel_reverts_the_moves_in_flight(cluster: FourBrokers, tmp_path: Path) -> None:
    rows = [[1, 2, 3], [2, 3, 1], [3, 1, 2]]
    topic = cluster.create_topic(rows)
    cluster.fill(topic, 3, 6)
    old = as_assignment(rows)
    plan = plan_for({topic: (old, as_assignment([[4, 2, 3], [2, 4, 1], [3, 1, 4]]))})
    config = ExecutorConfig(max_partitions_in_flight=2, throttle_bytes_per_s=256 * 1024, poll_interval_s=0.3)

    async def scenario() -> ExecutionState:
        admin = cluster.executor_admin()
        try:
            executor = Executor(admin, tmp_path / "execution.json", config)
            task = asyncio.create_task(executor.run(plan))
            await until(lambda: (s := executor.state) is not None and s.moves_in_flight == 2
                        and s.bytes_moved > 0, 60, "two moves copying")
            assert await asyncio.to_thread(cluster.ongoing), "Kafka shows the reassignments"
            executor.cancel()
            return await asyncio.wait_for(task, 60)
        finally:
            await asyncio.to_thread(admin.close)

    state = asyncio.run(scenario())
    assert state.phase == Phase.CANCELLED, state.message
    assert sorted(m.status for m in state.moves) == [MoveStatus.CANCELLED] * 3
    assert state.moves_done == 0
    cluster.wait_assignment(topic, old)
    cluster.wait_clean([topic])


# ---- refusing to start -------------------------------------------------------------


@pytest.mark.timeout(300)
def test_refuses_to_start_beside_a_reassignment_it_did_not_start(cluster: FourBrokers, tmp_path: Path) -> None:
    busy = cluster.create_topic([[1, 2, 3]], prefix="busy")
    cluster.fill(busy, 1, 4)
    other_rows = [[1, 2, 3]]
    other = cluster.create_topic(other_rows)
    plan = plan_for({other: (as_assignment(other_rows), as_assignment([[4, 2, 3]]))})
    path = tmp_path / "execution.json"
    client = cluster.kafka_python()
    brokers = ("1", "2", "3", "4")
    try:
        # someone else's reassignment, throttled so hard that it stays in progress
        client.alter_configs([ConfigResource(ConfigResourceType.BROKER, b, {
            "leader.replication.throttled.rate": "1000", "follower.replication.throttled.rate": "1000"})
            for b in brokers], raise_on_unknown=False)
        client.alter_configs([ConfigResource(ConfigResourceType.TOPIC, busy, {
            "leader.replication.throttled.replicas": "0:1,0:2,0:3",
            "follower.replication.throttled.replicas": "0:4"})], raise_on_unknown=False)
        client.alter_partition_reassignments({TopicPartition(busy, 0): [4, 2, 3]})
        wait_for(lambda: cluster.ongoing(), 30, "the foreign reassignment to show")

        async def attempt() -> None:
            admin = cluster.executor_admin()
            try:
                await Executor(admin, path, ExecutorConfig()).run(plan)
            finally:
                await asyncio.to_thread(admin.close)

        with pytest.raises(ForeignReassignmentsError, match=rf"{busy}-0 \(to \[4, 2, 3\]"):
            asyncio.run(attempt())
        assert not path.exists(), "nothing recorded for an execution that never started"
        assert cluster.describe(other)[0][0] == (1, 2, 3)
    finally:
        client.alter_partition_reassignments({TopicPartition(busy, 0): None})
        client.reset_configs([ConfigResource(ConfigResourceType.BROKER, b, [
            "leader.replication.throttled.rate", "follower.replication.throttled.rate"]) for b in brokers],
            raise_on_unknown=False)
        client.reset_configs([ConfigResource(ConfigResourceType.TOPIC, busy, [
            "leader.replication.throttled.replicas", "follower.replication.throttled.replicas"])],
            raise_on_unknown=False)
        client.close()
    cluster.wait_clean([busy])


@pytest.mark.timeout(120)
def test_refuses_a_plan_naming_a_broker_the_cluster_does_not_have(cluster: FourBrokers, tmp_path: Path) -> None:
    plan = Plan(cluster_id="executor-four", moves=(
        PartitionMove(topic="whatever", partition=0, old_replicas=(1, 2, 3), replicas=(7, 2, 3)),))
    path = tmp_path / "execution.json"

    async def attempt() -> None:
        admin = cluster.executor_admin()
        try:
            await Executor(admin, path).run(plan)
        finally:
            await asyncio.to_thread(admin.close)

    with pytest.raises(PlanError, match=r"broker\(s\) \[7\], which the cluster does not have"):
        asyncio.run(attempt())
    assert not path.exists()


# ---- kill -9 of the executor's process ----------------------------------------------


def start_runner(cluster: FourBrokers, state: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "streamplane.cli.executor", "--state", str(state),
            "--bootstrap", cluster.bootstrap, "--username", cluster.user, "--poll", "0.3", *extra]
    with open(log, "ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, PASSWORD_ENV: cluster.password})


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(30)


def kill_mid_plan(cluster: FourBrokers, tmp_path: Path, rows: list[list[int]],
                  new: Assignment) -> tuple[str, Path, Path]:
    """Start the runner on a 3-move plan (one move at a time, strongly throttled) and kill -9
    it while the second move is copying. Returns the topic, the state file and the log."""
    topic = cluster.create_topic(rows)
    cluster.fill(topic, len(rows), 4)
    plan = plan_for({topic: (as_assignment(rows), new)})
    plan_file, state, log = tmp_path / "plan.json", tmp_path / "execution.json", tmp_path / "runner.log"
    plan_file.write_text(plan.model_dump_json())
    proc = start_runner(cluster, state, log, "--plan", str(plan_file), "--throttle", "400000",
                        "--max-partitions", "1")
    try:
        def second_move_copying() -> bool:
            assert proc.poll() is None, f"the runner exited early:\n{log.read_text()}"
            st = load_state(state)
            return st is not None and st.moves_done == 1 and any(
                m.status == MoveStatus.IN_FLIGHT and m.bytes_moved > 0 for m in st.moves)

        wait_for(second_move_copying, 150, "the second move to be copying")
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        stop(proc)
    killed = load_state(state)
    assert killed is not None and killed.phase == Phase.RUNNING and not killed.settled
    return topic, state, log


def finish(cluster: FourBrokers, state: Path, log: Path, *extra: str) -> ExecutionState:
    proc = start_runner(cluster, state, log, *extra)
    try:
        code = proc.wait(240)
    finally:
        stop(proc)
    assert code == 0, log.read_text()
    final = load_state(state)
    assert final is not None
    return final


@pytest.mark.timeout(420)
def test_a_new_executor_resumes_after_kill_9(cluster: FourBrokers, tmp_path: Path) -> None:
    rows = [[1, 2, 3], [2, 3, 1], [3, 1, 2]]
    new = as_assignment([[4, 2, 3], [2, 4, 1], [3, 1, 4]])
    topic, state, log = kill_mid_plan(cluster, tmp_path, rows, new)

    final = finish(cluster, state, log, "--throttle", str(4 * MB))
    assert final.phase == Phase.COMPLETED, final.message
    assert final.moves_done == 3 and final.settled
    assert "restarted" in log.read_text()
    cluster.wait_assignment(topic, new)
    cluster.wait_clean([topic])


@pytest.mark.timeout(420)
def test_a_new_executor_rolls_back_after_kill_9(cluster: FourBrokers, tmp_path: Path) -> None:
    rows = [[1, 2, 3], [2, 3, 1], [3, 1, 2]]
    new = as_assignment([[4, 1, 2], [3, 4, 1], [2, 3, 4]])
    topic, state, log = kill_mid_plan(cluster, tmp_path, rows, new)

    final = finish(cluster, state, log, "--on-restart", "rollback", "--throttle", str(4 * MB))
    assert final.phase == Phase.ROLLED_BACK, final.message
    statuses = [m.status for m in final.moves]
    # the first move was done: moved back; the last never started; the second was cancelled
    # (or, had it finished while no executor ran, moved back)
    assert statuses[0] == MoveStatus.REVERTED and statuses[2] == MoveStatus.CANCELLED, final.message
    assert statuses[1] in (MoveStatus.CANCELLED, MoveStatus.REVERTED), final.message
    assert final.settled
    cluster.wait_assignment(topic, as_assignment(rows))
    cluster.wait_clean([topic])


# ---- a move that gets stuck (last: it freezes broker 4 for a while) -------------------


@pytest.mark.timeout(600)  # the module's cluster stops in this test's teardown, on the same clock
def test_a_stuck_move_is_cancelled_and_reported(cluster: FourBrokers, tmp_path: Path) -> None:
    rows = [[1, 2, 3]]
    topic = cluster.create_topic(rows)
    # 32 MiB at 1 MB/s: half a minute of copying, so the freeze lands mid-copy even on a
    # loaded machine (with 8 MiB, a late first look could find the copy already over, and
    # a move that is only waiting for its leader election never becomes stuck)
    cluster.fill(topic, 1, 32)
    plan = plan_for({topic: (as_assignment(rows), as_assignment([[4, 2, 3]]))})
    status = cluster.local.status(cluster.psc.id)
    assert status is not None
    pid = next(b.pid for b in status.brokers if b.id == 4)
    assert pid
    config = ExecutorConfig(stall_timeout_s=10, throttle_bytes_per_s=MB, poll_interval_s=0.3,
                            request_timeout_s=3)

    async def scenario() -> ExecutionState:
        admin = ReassignmentAdmin(cluster.settings(), timeout=3)
        frozen = False
        try:
            executor = Executor(admin, tmp_path / "execution.json", config)
            task = asyncio.create_task(executor.run(plan))
            await until(lambda: (s := executor.state) is not None and s.moves_in_flight == 1
                        and s.bytes_moved > 0, 60, "the move to be copying")
            os.kill(pid, signal.SIGSTOP)  # broker 4 took the move, and now copies nothing more
            frozen = True
            copying = executor.state
            assert copying is not None and copying.bytes_moved < copying.bytes_total, (
                f"the copy ran too fast to be frozen mid-way ({copying.bytes_moved if copying else 0} "
                "bytes already copied): the replication throttle did not hold")
            await until(lambda: (s := executor.state) is not None
                        and s.moves[0].status == MoveStatus.FAILED, 120, "the stuck move to be cancelled")
            os.kill(pid, signal.SIGCONT)
            frozen = False
            return await asyncio.wait_for(task, 150)
        finally:
            if frozen:
                os.kill(pid, signal.SIGCONT)
            await asyncio.to_thread(admin.close)

    state = asyncio.run(scenario())
    assert state.phase == Phase.COMPLETED, state.message
    (move,) = state.moves
    assert move.status == MoveStatus.FAILED and move.error and "stuck" in move.error, move
    assert state.error and "1 move(s) failed" in state.error
    assert state.settled, "the throttle on broker 4 came off once it answered again"
    cluster.wait_assignment(topic, as_assignment(rows))
    cluster.wait_clean([topic])
    wait_for(lambda: (st := cluster.local.status(cluster.psc.id)) is not None
             and all(b.registered for b in st.brokers), 60, "broker 4 to be back")
