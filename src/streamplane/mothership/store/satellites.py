"""Satellites: the per-host agents, as last heard from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from streamplane.mothership.store._base import RepoContext
from streamplane.mothership.store.errors import ConflictError, NotFoundError
from streamplane.mothership.store.records import Satellite
from streamplane.mothership.store.schema import PhysicalClusterRow, SatelliteRow

KIND = "satellite"


class Satellites:
    def __init__(self, ctx: RepoContext) -> None:
        self._ctx = ctx

    def upsert(
        self,
        name: str,
        *,
        zone: str,
        capacity: dict[str, Any],
        status: dict[str, Any] | None = None,
    ) -> Satellite:
        """Register a satellite or refresh it; either way it was seen now. A refresh without
        a ``status`` keeps the last one."""
        now = self._ctx.clock()
        values = {
            "name": name, "zone": zone, "capacity": capacity, "status": status,
            "last_seen_at": now, "created_at": now, "updated_at": now,
        }
        refresh = {k: v for k, v in values.items()
                   if k not in ("name", "created_at") and not (k == "status" and status is None)}
        with self._ctx.sessions.write() as s:
            if s.get_bind().dialect.name == "postgresql":
                pg = postgresql.insert(SatelliteRow).values(values)
                s.execute(pg.on_conflict_do_update(index_elements=["name"], set_=refresh))
            else:
                lite = sqlite.insert(SatelliteRow).values(values)
                s.execute(lite.on_conflict_do_update(index_elements=["name"], set_=refresh))
            return Satellite.model_validate(_load(s, name, fresh=True))

    def heartbeat(self, name: str, status: dict[str, Any] | None = None) -> Satellite:
        """Note that ``name`` is alive, keeping its last status unless a new one is given."""
        with self._ctx.sessions.write() as s:
            row = _load(s, name)
            now = self._ctx.clock()
            row.last_seen_at = now
            row.updated_at = now
            if status is not None:
                row.status = status
            s.flush()
            return Satellite.model_validate(row)

    def get(self, name: str) -> Satellite:
        with self._ctx.sessions.read() as s:
            return Satellite.model_validate(_load(s, name))

    def list(self, *, seen_since: datetime | None = None) -> list[Satellite]:
        stmt = select(SatelliteRow).order_by(SatelliteRow.name)
        if seen_since is not None:
            stmt = stmt.where(SatelliteRow.last_seen_at >= seen_since)
        with self._ctx.sessions.read() as s:
            return [Satellite.model_validate(r) for r in s.scalars(stmt)]

    def remove(self, name: str) -> None:
        """Forget a decommissioned satellite; refused while it still runs clusters."""
        with self._ctx.sessions.write() as s:
            row = _load(s, name)
            running = s.scalar(
                select(func.count()).where(PhysicalClusterRow.satellite == name)
            )
            if running:
                raise ConflictError(
                    f"satellite {name!r} still runs {running} physical cluster(s); "
                    "move or delete them first",
                    kind=KIND, key=name,
                )
            s.expunge(row)
            s.execute(
                delete(SatelliteRow)
                .where(SatelliteRow.name == name)
                .execution_options(synchronize_session=False)
            )


def _load(s: Session, name: str, *, fresh: bool = False) -> SatelliteRow:
    row = s.get(SatelliteRow, name, populate_existing=fresh)
    if row is None:
        raise NotFoundError(KIND, name)
    return row
