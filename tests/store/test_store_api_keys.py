"""API keys: the secret is shown once, verified in constant time, never stored."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import URL

from streamplane.mothership.store import (
    ClusterType,
    LogicalClusterStatus,
    NotFoundError,
    Store,
)
from streamplane.mothership.store.testing import dump_tables


@pytest.fixture
def cluster_id(store: Store) -> str:
    return store.logical_clusters.create(
        name="orders", type=ClusterType.BASIC, kafka_version="4.3.1"
    ).id


def test_verify_accepts_the_secret_and_nothing_else(store: Store, cluster_id: str) -> None:
    issued = store.api_keys.create(cluster_id, description="billing service", role="admin")
    key, secret = issued.api_key, issued.secret.get_secret_value()

    assert key.id.startswith("AK") and len(key.id) == 16
    assert len(secret) >= 32
    assert secret not in repr(issued)
    assert store.api_keys.verify(key.id, secret) == key
    assert store.api_keys.verify(key.id, secret[:-1] + ("x" if secret[-1] != "x" else "y")) is None
    assert store.api_keys.verify(key.id, "") is None
    assert store.api_keys.verify("AKDOESNOTEXIST00", secret) is None
    other = store.api_keys.create(cluster_id)
    assert store.api_keys.verify(other.api_key.id, secret) is None  # not another key's secret


def test_a_revoked_key_no_longer_verifies(store: Store, cluster_id: str) -> None:
    issued = store.api_keys.create(cluster_id)
    secret = issued.secret.get_secret_value()

    revoked = store.api_keys.revoke(issued.api_key.id)

    assert revoked.revoked_at is not None and not revoked.active
    assert store.api_keys.verify(issued.api_key.id, secret) is None
    assert store.api_keys.revoke(issued.api_key.id) == revoked  # keeps the first time
    assert store.api_keys.list(logical_cluster_id=cluster_id) == []
    assert store.api_keys.list(logical_cluster_id=cluster_id, include_revoked=True) == [revoked]


def test_keys_of_a_deleted_cluster_no_longer_verify(store: Store, cluster_id: str) -> None:
    issued = store.api_keys.create(cluster_id)
    store.logical_clusters.mark_deleting(cluster_id, expected_generation=None)
    store.logical_clusters.set_status(cluster_id, LogicalClusterStatus.DELETED)

    assert store.api_keys.verify(issued.api_key.id, issued.secret.get_secret_value()) is None
    with pytest.raises(NotFoundError, match="logical cluster"):
        store.api_keys.create(cluster_id)


def test_the_secret_never_reaches_the_database(
    store: Store, cluster_id: str, db_url: URL
) -> None:
    issued = [store.api_keys.create(cluster_id, description=f"k{i}") for i in range(3)]

    dump = dump_tables(db_url)

    for key in issued:
        assert key.api_key.id in dump  # the dump does show the key rows
        assert key.secret.get_secret_value() not in dump
    assert dump.count("scrypt$16384$8$1$") == 3
    hashes = [line for line in dump.splitlines() if line.startswith("api_keys:")]
    assert len(set(hashes[0].split("scrypt$")[1:])) == 3  # a salt per key


def test_unknown_keys_are_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.api_keys.get("AKDOESNOTEXIST00")
    with pytest.raises(NotFoundError):
        store.api_keys.revoke("AKDOESNOTEXIST00")
    with pytest.raises(NotFoundError):
        store.api_keys.create("lkc-nope00")
