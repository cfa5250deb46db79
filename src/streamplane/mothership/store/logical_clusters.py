"""Logical clusters: what a customer calls "my cluster"."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from streamplane.mothership.store import ids
from streamplane.mothership.store._base import UNSET, RepoContext, Unset
from streamplane.mothership.store.errors import AlreadyExistsError, ConflictError, NotFoundError
from streamplane.mothership.store.records import ClusterType, LogicalCluster, LogicalClusterStatus
from streamplane.mothership.store.schema import LogicalClusterRow

KIND = "logical cluster"
_MAX_NAME = 64
_ID_ATTEMPTS = 5
#: where a cluster being deleted may go: gone, or stuck (a later delete request retries)
_AFTER_DELETING = frozenset({
    LogicalClusterStatus.DELETING, LogicalClusterStatus.DELETED, LogicalClusterStatus.FAILED,
})


class LogicalClusters:
    def __init__(self, ctx: RepoContext) -> None:
        self._ctx = ctx

    def create(
        self,
        *,
        name: str,
        type: ClusterType,
        kafka_version: str,
        zones: int = 1,
        cku: int | None = None,
        id: str | None = None,
    ) -> LogicalCluster:
        """A new cluster in PROVISIONING at generation 1.

        Raises AlreadyExistsError if a live cluster already has ``name``.
        """
        _check_shape(type, cku, zones)
        _check_name(name)
        for _ in range(1 if id else _ID_ATTEMPTS):
            cluster_id = id or ids.logical_cluster_id()
            with self._ctx.sessions.write() as s:
                if _live_named(s, name) is not None:
                    raise AlreadyExistsError(KIND, "name", name)
                if s.get(LogicalClusterRow, cluster_id) is not None:
                    if id:
                        raise AlreadyExistsError(KIND, "id", id)
                    continue  # a random id collided; draw another
                now = self._ctx.clock()
                row = LogicalClusterRow(
                    id=cluster_id, name=name, type=ClusterType(type).value, cku=cku,
                    zones=zones, kafka_version=kafka_version,
                    status=LogicalClusterStatus.PROVISIONING.value, status_reason="",
                    physical_cluster_id=None, bootstrap=None, generation=1,
                    created_at=now, updated_at=now, deleted_at=None,
                )
                try:
                    with s.begin_nested():
                        s.add(row)
                except IntegrityError:
                    # a concurrent create of the same name committed first
                    raise AlreadyExistsError(KIND, "name", name) from None
                return LogicalCluster.model_validate(row)
        raise RuntimeError(f"could not draw an unused {KIND} id in {_ID_ATTEMPTS} attempts")

    def get(self, cluster_id: str, *, include_deleted: bool = False) -> LogicalCluster:
        with self._ctx.sessions.read() as s:
            return LogicalCluster.model_validate(_load(s, cluster_id, include_deleted))

    def get_by_name(self, name: str) -> LogicalCluster:
        """The live cluster called ``name``."""
        with self._ctx.sessions.read() as s:
            row = _live_named(s, name)
            if row is None:
                raise NotFoundError(KIND, name)
            return LogicalCluster.model_validate(row)

    def list(
        self,
        *,
        include_deleted: bool = False,
        status: LogicalClusterStatus | None = None,
        physical_cluster_id: str | None = None,
        after_id: str | None = None,
        limit: int | None = None,
    ) -> list[LogicalCluster]:
        """Ordered by id; pass the last id seen as ``after_id`` for the next page."""
        stmt = select(LogicalClusterRow)
        if not include_deleted:
            stmt = stmt.where(_is_live())
        if status is not None:
            stmt = stmt.where(LogicalClusterRow.status == status.value)
        if physical_cluster_id is not None:
            stmt = stmt.where(LogicalClusterRow.physical_cluster_id == physical_cluster_id)
        if after_id is not None:
            stmt = stmt.where(LogicalClusterRow.id > after_id)
        stmt = stmt.order_by(LogicalClusterRow.id).limit(limit)
        with self._ctx.sessions.read() as s:
            return [LogicalCluster.model_validate(r) for r in s.scalars(stmt)]

    def update(
        self,
        cluster_id: str,
        *,
        expected_generation: int | None,
        name: str | None = None,
        cku: int | None = None,
        zones: int | None = None,
        kafka_version: str | None = None,
    ) -> LogicalCluster:
        """Change the spec and bump the generation; ``None`` leaves a field as it is.

        With ``expected_generation`` set, raises ConflictError if the cluster is no longer
        at that generation (someone else changed it since the caller read it). Setting
        fields to the values they already have changes nothing and bumps nothing.
        """
        with self._ctx.sessions.write() as s:
            row = _load(s, cluster_id, include_deleted=False)
            _check_generation(row, expected_generation)
            if row.status in (LogicalClusterStatus.DELETING, LogicalClusterStatus.DELETED):
                raise ConflictError(
                    f"{KIND} {cluster_id!r} is being deleted and can no longer be changed",
                    kind=KIND, key=cluster_id,
                )
            wanted: dict[str, Any] = {
                "name": name, "cku": cku, "zones": zones, "kafka_version": kafka_version,
            }
            changes = {
                k: v for k, v in wanted.items() if v is not None and getattr(row, k) != v
            }
            if not changes:
                return LogicalCluster.model_validate(row)
            if "name" in changes:
                _check_name(changes["name"])
            _check_shape(ClusterType(row.type), changes.get("cku", row.cku),
                         changes.get("zones", row.zones))
            try:
                with s.begin_nested():
                    row = self._bump(s, row, changes)
            except IntegrityError:
                if "name" not in changes:
                    raise
                raise AlreadyExistsError(KIND, "name", changes["name"]) from None
            return LogicalCluster.model_validate(row)

    def set_status(
        self,
        cluster_id: str,
        status: LogicalClusterStatus,
        reason: str = "",
        *,
        physical_cluster_id: str | Unset | None = UNSET,
        bootstrap: str | Unset | None = UNSET,
        expected_generation: int | None = None,
    ) -> LogicalCluster:
        """Record what the reconciler found. Does not bump the generation.

        A reconciler passes the generation it acted on, so a result computed for an older
        spec (say, RUNNING, while a delete was requested meanwhile) is refused with
        ConflictError rather than written over the newer request. A cluster being deleted
        only goes on to DELETED (final; frees the name) or FAILED.
        """
        with self._ctx.sessions.write() as s:
            row = _load(s, cluster_id, include_deleted=True)
            _check_generation(row, expected_generation)
            if row.deleted_at is not None:
                raise ConflictError(
                    f"{KIND} {cluster_id!r} is deleted; its status can no longer change",
                    kind=KIND, key=cluster_id,
                )
            if row.status == LogicalClusterStatus.DELETING and status not in _AFTER_DELETING:
                raise ConflictError(
                    f"{KIND} {cluster_id!r} is being deleted; it cannot become {status.value}",
                    kind=KIND, key=cluster_id,
                )
            now = self._ctx.clock()
            values: dict[str, Any] = {
                "status": LogicalClusterStatus(status).value, "status_reason": reason,
                "updated_at": now,
            }
            if status == LogicalClusterStatus.DELETED:
                values["deleted_at"] = now
            if physical_cluster_id is not UNSET:
                values["physical_cluster_id"] = physical_cluster_id
            if bootstrap is not UNSET:
                values["bootstrap"] = bootstrap
            row = _guarded_update(s, row, values)
            return LogicalCluster.model_validate(row)

    def mark_deleting(
        self, cluster_id: str, *, expected_generation: int | None, reason: str = ""
    ) -> LogicalCluster:
        """Ask for deletion: status DELETING, generation bumped. Asking twice is harmless."""
        with self._ctx.sessions.write() as s:
            row = _load(s, cluster_id, include_deleted=False)
            _check_generation(row, expected_generation)
            if row.status == LogicalClusterStatus.DELETING:
                return LogicalCluster.model_validate(row)
            row = self._bump(
                s, row, {"status": LogicalClusterStatus.DELETING.value, "status_reason": reason}
            )
            return LogicalCluster.model_validate(row)

    def _bump(self, s: Session, row: LogicalClusterRow, values: dict[str, Any]) -> LogicalClusterRow:
        values = {
            **values,
            "generation": LogicalClusterRow.generation + 1,
            "updated_at": self._ctx.clock(),
        }
        return _guarded_update(s, row, values)


def _guarded_update(
    s: Session, row: LogicalClusterRow, values: dict[str, Any]
) -> LogicalClusterRow:
    """UPDATE only if the row is still at the generation we read, so two writers that
    read the same row cannot both win."""
    seen = row.generation
    stmt = (
        update(LogicalClusterRow)
        .where(LogicalClusterRow.id == row.id, LogicalClusterRow.generation == seen)
        .values(values)
        .returning(LogicalClusterRow.id)
        .execution_options(synchronize_session=False)
    )
    if s.execute(stmt).scalar_one_or_none() is None:
        current = s.get(LogicalClusterRow, row.id, populate_existing=True)
        if current is None:
            raise NotFoundError(KIND, row.id)
        raise ConflictError.stale(KIND, row.id, seen, current.generation)
    fresh = s.get(LogicalClusterRow, row.id, populate_existing=True)
    assert fresh is not None
    return fresh


def _is_live() -> ColumnElement[bool]:
    return LogicalClusterRow.deleted_at.is_(None)


def _live_named(s: Session, name: str) -> LogicalClusterRow | None:
    return s.scalar(select(LogicalClusterRow).where(_is_live(), LogicalClusterRow.name == name))


def _load(s: Session, cluster_id: str, include_deleted: bool) -> LogicalClusterRow:
    row = s.get(LogicalClusterRow, cluster_id)
    if row is None or (row.deleted_at is not None and not include_deleted):
        raise NotFoundError(KIND, cluster_id)
    return row


def _check_generation(row: LogicalClusterRow, expected: int | None) -> None:
    if expected is not None and row.generation != expected:
        raise ConflictError.stale(KIND, row.id, expected, row.generation)


def _check_name(name: str) -> None:
    if not name.strip() or len(name) > _MAX_NAME or name != name.strip():
        raise ValueError(
            f"cluster name {name!r} must be 1-{_MAX_NAME} characters "
            "without leading or trailing spaces"
        )


def _check_shape(type: ClusterType, cku: int | None, zones: int) -> None:
    if zones < 1:
        raise ValueError(f"zones must be at least 1, got {zones}")
    if type == ClusterType.DEDICATED:
        if cku is None or cku < 1:
            raise ValueError("a dedicated cluster needs cku >= 1")
    elif cku is not None:
        raise ValueError(f"cku applies to dedicated clusters only, not {type.value}")
