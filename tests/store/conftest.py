"""Fixtures for the state store tests: every ``store`` test runs on SQLite and on a real
PostgreSQL server.

PostgreSQL comes from ``STREAMPLANE_TEST_PG_URL`` (a server URL whose role may create
databases) or, when that is unset, from ``scripts/postgres.sh``, started once per session
in a temporary directory and stopped at the end. If PostgreSQL cannot be had, the
PostgreSQL tests fail: they are never skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url

from streamplane.mothership.store import SecretBox, Store
from streamplane.mothership.store.testing import ManualClock

REPO = Path(__file__).resolve().parents[2]
POSTGRES_SH = REPO / "scripts" / "postgres.sh"
PG_URL_ENV = "STREAMPLANE_TEST_PG_URL"
#: generous: on a fresh machine the script first installs PostgreSQL with apt-get
PG_START_TIMEOUT_S = 600.0
PG_STOP_TIMEOUT_S = 120.0
PG_CONNECT_TIMEOUT_S = 10
#: deadline of each test's body; the fixtures that start PostgreSQL have their own
TEST_TIMEOUT_S = 60

StoreFactory = Callable[..., Store]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TEST_TIMEOUT_S, func_only=True))


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[URL]:
    from_env = os.environ.get(PG_URL_ENV)
    if from_env:
        yield make_url(from_env)
        return
    # under /tmp, not pytest's private tmp dir: the server runs as the postgres user
    pg_dir = Path(tempfile.mkdtemp(prefix="streamplane-pg-", dir="/tmp"))
    try:
        try:
            proc = subprocess.run(
                [str(POSTGRES_SH), "start", str(pg_dir)],
                capture_output=True, text=True, timeout=PG_START_TIMEOUT_S, check=False,
            )
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"scripts/postgres.sh did not finish in {e.timeout}s", pytrace=False)
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            pytest.fail(
                f"PostgreSQL is required for these tests but scripts/postgres.sh failed "
                f"(exit {proc.returncode}):\n{proc.stderr}\nSet {PG_URL_ENV} to use another "
                "server.",
                pytrace=False,
            )
        yield make_url(lines[-1])
    finally:
        subprocess.run(
            [str(POSTGRES_SH), "stop", str(pg_dir)],
            capture_output=True, timeout=PG_STOP_TIMEOUT_S, check=False,
        )
        shutil.rmtree(pg_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_admin(pg_server_url: URL) -> Iterator[Engine]:
    engine = create_engine(
        pg_server_url,
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S},
    )
    yield engine
    engine.dispose()


@pytest.fixture
def pg_database(pg_server_url: URL, pg_admin: Engine) -> Iterator[URL]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"sp_test_{uuid.uuid4().hex[:12]}"
    with pg_admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield pg_server_url.set(database=name).update_query_dict(
            {"connect_timeout": str(PG_CONNECT_TIMEOUT_S)}
        )
    finally:
        with pg_admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> URL:
    if request.param == "sqlite":
        return make_url(f"sqlite:///{tmp_path / 'state' / 'mothership.db'}")
    url: URL = request.getfixturevalue("pg_database")
    return url


@pytest.fixture
def secret_box(tmp_path: Path) -> SecretBox:
    return SecretBox.in_data_dir(tmp_path / "data")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def open_store(db_url: URL, secret_box: SecretBox) -> Iterator[StoreFactory]:
    """Opens more Store objects on the test's database (a second writer, say), closing
    them all at the end."""
    opened: list[Store] = []

    def _open(**overrides: Any) -> Store:
        kwargs: dict[str, Any] = {"secret_box": secret_box, **overrides}
        store = Store(db_url, **kwargs)
        opened.append(store)
        return store

    yield _open
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: StoreFactory, clock: ManualClock) -> Store:
    """A migrated store on a fresh database, with a hand-driven clock."""
    s = open_store(clock=clock)
    s.migrate()
    return s
