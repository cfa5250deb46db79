"""Migrations: run from code, idempotent, safe to race, and in step with the models."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import URL

from streamplane.mothership.store import ClusterType, SecretBox, Store
from streamplane.mothership.store.migrate import head_revision
from streamplane.mothership.store.schema import Base

TABLES = {
    "alembic_version", "api_keys", "idempotency_keys", "logical_clusters", "operations",
    "physical_clusters", "satellites", "tenant_principals",
}


def _tables(url: URL) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migrating_twice_changes_nothing(open_store: Callable[..., Store], db_url: URL) -> None:
    store = open_store()
    assert store.schema_revision() is None
    head = store.migrate()
    assert head == head_revision()
    assert _tables(db_url) == TABLES
    cluster = store.logical_clusters.create(
        name="orders", type=ClusterType.BASIC, kafka_version="4.3.1"
    )

    assert store.migrate() == head
    assert open_store().migrate() == head  # a second process starting up

    assert store.schema_revision() == head
    assert _tables(db_url) == TABLES
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    finally:
        engine.dispose()
    assert [v[0] for v in versions] == [head]
    assert store.logical_clusters.get(cluster.id) == cluster


def test_migrations_build_exactly_the_schema_the_models_describe(
    store: Store, db_url: URL
) -> None:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
    finally:
        engine.dispose()
    assert diffs == []


def test_mothership_processes_starting_together_all_migrate(open_store: Callable[..., Store]) -> None:
    stores = [open_store() for _ in range(4)]
    with ThreadPoolExecutor(len(stores)) as pool:
        revisions = list(pool.map(lambda s: s.migrate(), stores))
    assert revisions == [head_revision()] * len(stores)
    assert stores[0].logical_clusters.list() == []


def test_sqlite_store_runs_in_wal_mode(tmp_path: Path) -> None:
    """WAL lets the API read while the reconciler writes. (Foreign keys being enforced on
    SQLite shows in test_removing_a_physical_cluster_unlinks_its_logical_clusters.)"""
    db = tmp_path / "m.db"
    with Store(f"sqlite:///{db}", secret_box=SecretBox.generate()) as store:
        store.migrate()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
