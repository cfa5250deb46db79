"""Helpers for tests that use the state store: a hand-driven clock, a raw view of the
tables, a sample PSC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import SecretStr
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

from streamplane.models import BrokerSpec, PhysicalClusterSpec, SuperUser
from streamplane.mothership.store.schema import Base


class ManualClock:
    """A clock that moves only when told to; pass it as ``Store(clock=...)``."""

    def __init__(self, start: datetime = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def dump_tables(url: str | URL) -> str:
    """Every row of every store table as text, read with plain SQL past the ORM: what
    someone holding a copy of the database would see."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            chunks = []
            for table in Base.metadata.sorted_tables:
                rows = conn.execute(text(f'SELECT * FROM "{table.name}"')).all()
                chunks.append(f"{table.name}: {[tuple(r) for r in rows]!r}")
            return "\n".join(chunks)
    finally:
        engine.dispose()


def sample_psc(
    cluster_id: str = "pkc-abc123", *, satellite: str = "sat-a", password: str
) -> PhysicalClusterSpec:
    """A small valid PSC: two brokers in two zones."""
    return PhysicalClusterSpec(
        id=cluster_id,
        satellite=satellite,
        brokers=(BrokerSpec(id=0, zone="zone-a"), BrokerSpec(id=1, zone="zone-b")),
        broker_configs={"default.replication.factor": "2"},
        super_user=SuperUser(password=SecretStr(password)),
    )
