"""Idempotency keys, and transactions that make a request's effects all-or-nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from streamplane.mothership.store import (
    ClaimOutcome,
    ClusterType,
    ConflictError,
    IdempotencyKeyReusedError,
    OperationKind,
    Store,
    request_fingerprint,
)
from streamplane.mothership.store.testing import ManualClock

SCOPE = "POST /v1/clusters|user:alice"
BODY = {"name": "orders", "type": "basic", "kafka_version": "4.3.1"}


def test_fingerprint_ignores_key_order_but_not_content() -> None:
    assert request_fingerprint({"a": 1, "b": [1, 2]}) == request_fingerprint({"b": [1, 2], "a": 1})
    assert request_fingerprint({"a": 1}) != request_fingerprint({"a": 2})
    assert len(request_fingerprint(BODY)) == 64


def test_same_key_same_body_replays_the_stored_response(store: Store) -> None:
    fp = request_fingerprint(BODY)
    first = store.idempotency.claim(SCOPE, "key-1", fp)
    assert first.outcome == ClaimOutcome.CLAIMED
    op = store.operations.create(OperationKind.CREATE_CLUSTER, "lkc-abc123")
    store.idempotency.complete(
        SCOPE, "key-1", status_code=202, response={"operation": op.id}, operation_id=op.id
    )

    retry = store.idempotency.claim(SCOPE, "key-1", request_fingerprint(dict(BODY)))

    assert retry.outcome == ClaimOutcome.REPLAY
    assert (retry.record.status_code, retry.record.response) == (202, {"operation": op.id})
    assert retry.record.operation_id == op.id
    # the same key in another scope (another user) is another key
    assert store.idempotency.claim("POST /v1/clusters|user:bob", "key-1", fp).outcome == (
        ClaimOutcome.CLAIMED
    )


def test_same_key_with_a_different_body_is_flagged(store: Store) -> None:
    store.idempotency.claim(SCOPE, "key-1", request_fingerprint(BODY))
    store.idempotency.complete(SCOPE, "key-1", status_code=202, response={"ok": True})

    with pytest.raises(IdempotencyKeyReusedError, match="different request"):
        store.idempotency.claim(SCOPE, "key-1", request_fingerprint({**BODY, "name": "other"}))
    assert store.idempotency.get(SCOPE, "key-1").response == {"ok": True}


def test_a_key_in_flight_is_reported_until_its_claim_expires(
    store: Store, clock: ManualClock
) -> None:
    fp = request_fingerprint(BODY)
    store.idempotency.claim(SCOPE, "key-1", fp, claim_ttl=timedelta(minutes=5))

    assert store.idempotency.claim(SCOPE, "key-1", fp).outcome == ClaimOutcome.IN_PROGRESS
    clock.advance(timedelta(minutes=6))  # the first request's process died
    assert store.idempotency.claim(SCOPE, "key-1", fp).outcome == ClaimOutcome.CLAIMED
    store.idempotency.release(SCOPE, "key-1")
    assert store.idempotency.claim(SCOPE, "key-1", fp).outcome == ClaimOutcome.CLAIMED
    store.idempotency.complete(SCOPE, "key-1", status_code=201, response=None)
    with pytest.raises(ConflictError, match="already completed"):
        store.idempotency.complete(SCOPE, "key-1", status_code=500, response=None)
    store.idempotency.release(SCOPE, "key-1")  # completed keys stay
    assert store.idempotency.claim(SCOPE, "key-1", fp).outcome == ClaimOutcome.REPLAY


def test_concurrent_claims_of_one_key_have_one_winner(
    store: Store, open_store: Callable[..., Store]
) -> None:
    fp = request_fingerprint(BODY)
    stores = [open_store() for _ in range(6)]
    start = threading.Barrier(len(stores))

    def claim(s: Store) -> ClaimOutcome:
        start.wait()
        return s.idempotency.claim(SCOPE, "key-race", fp).outcome

    with ThreadPoolExecutor(len(stores)) as pool:
        outcomes = list(pool.map(claim, stores))

    assert sorted(outcomes) == [ClaimOutcome.CLAIMED] + [ClaimOutcome.IN_PROGRESS] * 5


def test_old_keys_are_purged(store: Store, clock: ManualClock) -> None:
    fp = request_fingerprint(BODY)
    store.idempotency.claim(SCOPE, "old", fp)
    clock.advance(timedelta(days=2))
    store.idempotency.claim(SCOPE, "new", fp)

    assert store.idempotency.purge(created_before=clock.now - timedelta(days=1)) == 1
    assert store.idempotency.claim(SCOPE, "old", request_fingerprint({})).outcome == (
        ClaimOutcome.CLAIMED
    )


def test_a_request_is_recorded_whole_or_not_at_all(store: Store) -> None:
    fp = request_fingerprint(BODY)

    with pytest.raises(RuntimeError, match="crash"), store.transaction() as tx:
        assert tx.idempotency.claim(SCOPE, "key-1", fp).outcome == ClaimOutcome.CLAIMED
        c = tx.logical_clusters.create(
            name="orders", type=ClusterType.BASIC, kafka_version="4.3.1"
        )
        tx.operations.create(OperationKind.CREATE_CLUSTER, c.id)
        raise RuntimeError("crash before commit")

    assert store.logical_clusters.list(include_deleted=True) == []
    assert store.operations.list() == []
    assert store.idempotency.claim(SCOPE, "key-1", fp).outcome == ClaimOutcome.CLAIMED
    store.idempotency.release(SCOPE, "key-1")

    with store.transaction() as tx:
        tx.idempotency.claim(SCOPE, "key-1", fp)
        c = tx.logical_clusters.create(
            name="orders", type=ClusterType.BASIC, kafka_version="4.3.1"
        )
        op = tx.operations.create(OperationKind.CREATE_CLUSTER, c.id)
        tx.idempotency.complete(
            SCOPE, "key-1", status_code=202, response={"id": c.id}, operation_id=op.id
        )

    assert store.logical_clusters.get(c.id) == c
    assert store.operations.get(op.id) == op
    replay = store.idempotency.claim(SCOPE, "key-1", fp)
    assert (replay.outcome, replay.record.response) == (ClaimOutcome.REPLAY, {"id": c.id})


def test_a_refused_step_inside_a_transaction_leaves_the_rest_usable(store: Store) -> None:
    store.logical_clusters.create(name="taken", type=ClusterType.BASIC, kafka_version="4.3.1")

    with store.transaction() as tx:
        with pytest.raises(Exception, match="already exists"):
            tx.logical_clusters.create(
                name="taken", type=ClusterType.BASIC, kafka_version="4.3.1"
            )
        made = tx.logical_clusters.create(
            name="free", type=ClusterType.BASIC, kafka_version="4.3.1"
        )

    assert store.logical_clusters.get(made.id) == made
