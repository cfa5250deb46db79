"""Long-running operations: status, progress, error, and a final state that stays final."""

from __future__ import annotations

from datetime import timedelta

import pytest

from streamplane.mothership.store import (
    ConflictError,
    NotFoundError,
    OperationKind,
    OperationStatus,
    Store,
)
from streamplane.mothership.store.testing import ManualClock


def test_an_operation_runs_to_success(store: Store, clock: ManualClock) -> None:
    op = store.operations.create(
        OperationKind.CREATE_CLUSTER, "lkc-abc123", request={"name": "orders", "cku": 2}
    )
    assert op.id.startswith("op-")
    assert (op.status, op.progress, op.error, op.finished_at) == (
        OperationStatus.PENDING, 0.0, None, None,
    )
    assert op.request == {"name": "orders", "cku": 2}

    clock.advance(timedelta(seconds=3))
    running = store.operations.update(op.id, status=OperationStatus.RUNNING, progress=40.5)
    assert (running.status, running.progress, running.updated_at) == (
        OperationStatus.RUNNING, 40.5, clock.now,
    )
    clock.advance(timedelta(seconds=3))
    done = store.operations.update(op.id, status=OperationStatus.SUCCEEDED)

    assert (done.status, done.progress, done.finished_at) == (
        OperationStatus.SUCCEEDED, 100.0, clock.now,
    )
    assert store.operations.get(op.id) == done
    with pytest.raises(ConflictError, match="already finished as SUCCEEDED"):
        store.operations.update(op.id, status=OperationStatus.FAILED)


def test_a_failed_operation_keeps_its_error_and_progress(store: Store) -> None:
    op = store.operations.create("create_topic", "lkc-abc123/topics/orders")
    store.operations.update(op.id, status=OperationStatus.RUNNING, progress=60)
    failed = store.operations.update(
        op.id, status=OperationStatus.FAILED, error="broker quota exceeded"
    )
    assert (failed.progress, failed.error) == (60.0, "broker quota exceeded")
    assert failed.finished_at is not None
    assert store.operations.list(status=OperationStatus.FAILED) == [failed]


def test_operations_list_newest_first_and_filter(store: Store, clock: ManualClock) -> None:
    made = []
    for i in range(3):
        clock.advance(timedelta(seconds=1))
        made.append(store.operations.create(OperationKind.UPDATE_CLUSTER, f"lkc-{i}"))
    clock.advance(timedelta(seconds=1))
    other = store.operations.create(OperationKind.DELETE_CLUSTER, "lkc-0")

    assert [o.id for o in store.operations.list()] == [other.id] + [o.id for o in made[::-1]]
    assert [o.id for o in store.operations.list(target_id="lkc-0")] == [other.id, made[0].id]
    assert store.operations.list(kind=OperationKind.DELETE_CLUSTER) == [other]
    assert len(store.operations.list(limit=2)) == 2


def test_bad_updates_are_refused(store: Store) -> None:
    op = store.operations.create(OperationKind.CREATE_CLUSTER, "lkc-abc123")
    for bad in (-1.0, 100.5, float("nan")):
        with pytest.raises(ValueError, match="progress"):
            store.operations.update(op.id, progress=bad)
    with pytest.raises(ValueError, match="snake_case"):
        store.operations.create("Create Cluster", "lkc-abc123")
    with pytest.raises(NotFoundError):
        store.operations.update("op-nope", progress=1)
    assert store.operations.get(op.id) == op


def test_unfinished_finds_open_operations_of_the_kinds_asked(store: Store, clock: ManualClock) -> None:
    done = store.operations.create("scale_cluster", "lkc-a")
    store.operations.update(done.id, status=OperationStatus.SUCCEEDED)
    clock.advance(timedelta(seconds=1))
    pending = store.operations.create("scale_cluster", "lkc-a")
    clock.advance(timedelta(seconds=1))
    running = store.operations.create("quarantine_cluster", "lkc-a")
    store.operations.update(running.id, status=OperationStatus.RUNNING)
    store.operations.create("scale_cluster", "lkc-b")

    assert [op.id for op in store.operations.unfinished("lkc-a", ["scale_cluster"])] == [pending.id]
    assert [op.id for op in store.operations.unfinished("lkc-a", ("scale_cluster", "quarantine_cluster"))] \
        == [running.id, pending.id]
    assert store.operations.unfinished("lkc-a", ["delete_cluster"]) == []
