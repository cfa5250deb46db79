"""Logical clusters: round trips, unique live names, and optimistic concurrency."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from streamplane.mothership.store import (
    AlreadyExistsError,
    ClusterType,
    ConflictError,
    LogicalCluster,
    LogicalClusterStatus,
    NotFoundError,
    Store,
)
from streamplane.mothership.store.testing import ManualClock

VERSION = "4.3.1"


def _create(store: Store, name: str = "orders", **kwargs: Any) -> LogicalCluster:
    fields: dict[str, Any] = {"type": ClusterType.STANDARD, "kafka_version": VERSION, **kwargs}
    return store.logical_clusters.create(name=name, **fields)


def test_create_get_list_round_trip(store: Store, clock: ManualClock) -> None:
    created = store.logical_clusters.create(
        name="payments", type=ClusterType.DEDICATED, kafka_version=VERSION, cku=2, zones=3
    )

    assert created.id.startswith("lkc-") and len(created.id) == 10
    assert (created.name, created.type, created.cku, created.zones) == (
        "payments", ClusterType.DEDICATED, 2, 3,
    )
    assert created.status == LogicalClusterStatus.PROVISIONING
    assert created.generation == 1
    assert created.created_at == created.updated_at == clock.now
    assert created.created_at.tzinfo is not None
    assert created.physical_cluster_id is None and created.deleted_at is None
    assert store.logical_clusters.get(created.id) == created
    assert store.logical_clusters.get_by_name("payments") == created
    assert store.logical_clusters.list() == [created]


def test_live_names_are_unique_and_deletion_frees_the_name(store: Store) -> None:
    first = _create(store, "orders")
    with pytest.raises(AlreadyExistsError, match="name 'orders' already exists"):
        _create(store, "orders")
    assert [c.id for c in store.logical_clusters.list()] == [first.id]

    store.logical_clusters.mark_deleting(first.id, expected_generation=1)
    with pytest.raises(AlreadyExistsError):
        _create(store, "orders")  # still being deleted: the name is taken
    store.logical_clusters.set_status(first.id, LogicalClusterStatus.DELETED)

    second = _create(store, "orders")
    assert second.id != first.id
    with pytest.raises(NotFoundError):
        store.logical_clusters.get(first.id)
    gone = store.logical_clusters.get(first.id, include_deleted=True)
    assert gone.status == LogicalClusterStatus.DELETED and gone.deleted_at is not None
    assert store.logical_clusters.list() == [second]
    assert {c.id for c in store.logical_clusters.list(include_deleted=True)} == {
        first.id, second.id,
    }


def test_renaming_onto_a_taken_name_is_refused(store: Store) -> None:
    _create(store, "a")
    b = _create(store, "b")
    with pytest.raises(AlreadyExistsError, match="'a'"):
        store.logical_clusters.update(b.id, expected_generation=1, name="a")
    assert store.logical_clusters.get(b.id) == b


def test_spec_changes_bump_the_generation_and_no_ops_do_not(
    store: Store, clock: ManualClock
) -> None:
    c = _create(store, type=ClusterType.DEDICATED, cku=1)
    clock.advance(timedelta(seconds=5))

    grown = store.logical_clusters.update(c.id, expected_generation=1, cku=4)
    assert (grown.cku, grown.generation, grown.updated_at) == (4, 2, clock.now)
    same = store.logical_clusters.update(c.id, expected_generation=2, cku=4)
    assert same == grown
    assert store.logical_clusters.get(c.id).generation == 2

    status = store.logical_clusters.set_status(
        c.id, LogicalClusterStatus.RUNNING, physical_cluster_id=None, bootstrap="127.0.0.1:9092"
    )
    assert status.generation == 2  # status is not spec
    assert status.bootstrap == "127.0.0.1:9092"
    kept = store.logical_clusters.set_status(c.id, LogicalClusterStatus.UPDATING, "resizing")
    assert kept.bootstrap == "127.0.0.1:9092" and kept.status_reason == "resizing"


def test_second_writer_with_a_stale_generation_gets_a_conflict(
    store: Store, open_store: Callable[..., Store]
) -> None:
    c = _create(store, type=ClusterType.DEDICATED, cku=1)
    other = open_store()
    seen_by_a = store.logical_clusters.get(c.id)
    seen_by_b = other.logical_clusters.get(c.id)
    assert seen_by_a.generation == seen_by_b.generation == 1

    store.logical_clusters.update(c.id, expected_generation=seen_by_a.generation, cku=2)
    with pytest.raises(ConflictError) as err:
        other.logical_clusters.update(c.id, expected_generation=seen_by_b.generation, cku=3)

    assert (err.value.expected_generation, err.value.current_generation) == (1, 2)
    final = other.logical_clusters.get(c.id)
    assert (final.cku, final.generation) == (2, 2)


def test_concurrent_writers_on_one_generation_exactly_one_wins(
    store: Store, open_store: Callable[..., Store]
) -> None:
    c = _create(store, type=ClusterType.DEDICATED, cku=1)
    writers = [open_store() for _ in range(6)]
    start = threading.Barrier(len(writers))

    def write(i: int) -> str:
        start.wait()
        try:
            writers[i].logical_clusters.update(c.id, expected_generation=1, cku=i + 2)
        except ConflictError:
            return "conflict"
        return "won"

    with ThreadPoolExecutor(len(writers)) as pool:
        outcomes = list(pool.map(write, range(len(writers))))

    assert sorted(outcomes) == ["conflict"] * (len(writers) - 1) + ["won"]
    final = store.logical_clusters.get(c.id)
    assert final.generation == 2
    assert final.cku == outcomes.index("won") + 2


def test_status_computed_for_an_older_generation_is_refused(store: Store) -> None:
    c = _create(store)
    acted_on = c.generation
    store.logical_clusters.mark_deleting(c.id, expected_generation=None)  # meanwhile

    with pytest.raises(ConflictError):
        store.logical_clusters.set_status(
            c.id, LogicalClusterStatus.RUNNING, expected_generation=acted_on
        )
    with pytest.raises(ConflictError, match="cannot become RUNNING"):
        store.logical_clusters.set_status(c.id, LogicalClusterStatus.RUNNING)  # no generation
    assert store.logical_clusters.get(c.id).status == LogicalClusterStatus.DELETING


def test_a_cluster_being_deleted_cannot_change_and_deleted_is_final(store: Store) -> None:
    c = _create(store)
    deleting = store.logical_clusters.mark_deleting(c.id, expected_generation=1)
    assert (deleting.status, deleting.generation) == (LogicalClusterStatus.DELETING, 2)
    assert store.logical_clusters.mark_deleting(c.id, expected_generation=None) == deleting

    with pytest.raises(ConflictError, match="being deleted"):
        store.logical_clusters.update(c.id, expected_generation=None, zones=3)
    store.logical_clusters.set_status(c.id, LogicalClusterStatus.DELETED)
    with pytest.raises(ConflictError, match="deleted"):
        store.logical_clusters.set_status(c.id, LogicalClusterStatus.RUNNING)
    with pytest.raises(NotFoundError):
        store.logical_clusters.mark_deleting(c.id, expected_generation=None)


def test_list_filters_and_pages_by_id(store: Store) -> None:
    made = sorted((_create(store, f"c{i}") for i in range(5)), key=lambda c: c.id)
    store.logical_clusters.set_status(made[1].id, LogicalClusterStatus.RUNNING)

    page1 = store.logical_clusters.list(limit=2)
    page2 = store.logical_clusters.list(limit=2, after_id=page1[-1].id)
    page3 = store.logical_clusters.list(limit=2, after_id=page2[-1].id)
    assert [c.id for c in page1 + page2 + page3] == [c.id for c in made]
    running = store.logical_clusters.list(status=LogicalClusterStatus.RUNNING)
    assert [c.id for c in running] == [made[1].id]


def test_unknown_ids_and_bad_shapes_are_refused_with_a_reason(store: Store) -> None:
    with pytest.raises(NotFoundError, match="lkc-nope"):
        store.logical_clusters.get("lkc-nope")
    with pytest.raises(NotFoundError):
        store.logical_clusters.update("lkc-nope", expected_generation=1, zones=3)
    with pytest.raises(ValueError, match="dedicated cluster needs cku"):
        _create(store, type=ClusterType.DEDICATED)
    with pytest.raises(ValueError, match="cku applies to dedicated clusters only"):
        _create(store, type=ClusterType.BASIC, cku=2)
    with pytest.raises(ValueError, match="zones"):
        _create(store, zones=0)
    with pytest.raises(ValueError, match="name"):
        _create(store, " padded ")
    c = _create(store, type=ClusterType.STANDARD)
    with pytest.raises(ValueError, match="cku applies"):
        store.logical_clusters.update(c.id, expected_generation=1, cku=2)
    with pytest.raises(AlreadyExistsError, match="id"):
        _create(store, "other", id=c.id)
    assert store.logical_clusters.list() == [c]
