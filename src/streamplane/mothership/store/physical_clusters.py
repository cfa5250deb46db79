"""Physical clusters: the PSCs the scheduler wants and what satellites report back."""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from streamplane.models import ClusterStatus, PhysicalClusterSpec
from streamplane.mothership.store._base import RepoContext
from streamplane.mothership.store.errors import (
    AlreadyExistsError,
    ConflictError,
    NotFoundError,
    SecretDecryptionError,
)
from streamplane.mothership.store.records import PhysicalCluster, PhysicalClusterKind
from streamplane.mothership.store.schema import PhysicalClusterRow, SatelliteRow
from streamplane.mothership.store.secretbox import SecretBox

KIND = "physical cluster"
#: where the PSC keeps secrets; each is encrypted before the spec reaches the database
SECRET_PATHS: tuple[tuple[str, ...], ...] = (("super_user", "password"), ("tls", "ca_key"))
#: marks an encrypted value in the stored JSON
SEALED_PREFIX = "fernet:"


class PhysicalClusters:
    def __init__(self, ctx: RepoContext) -> None:
        self._ctx = ctx

    def create(self, spec: PhysicalClusterSpec, *, kind: PhysicalClusterKind) -> PhysicalCluster:
        """Store a new PSC at generation 1, on the satellite named in ``spec.satellite``."""
        satellite = _satellite_of(spec)
        spec = spec.model_copy(update={"generation": 1})
        with self._ctx.sessions.write() as s:
            if s.get(SatelliteRow, satellite) is None:
                raise NotFoundError("satellite", satellite)
            if s.get(PhysicalClusterRow, spec.id) is not None:
                raise AlreadyExistsError(KIND, "id", spec.id)
            now = self._ctx.clock()
            row = PhysicalClusterRow(
                id=spec.id, satellite=satellite, kind=PhysicalClusterKind(kind).value,
                spec=seal(spec, self._ctx.secret_box), generation=1, observed_status=None,
                observed_generation=None, deleting=False, created_at=now, updated_at=now,
            )
            try:
                with s.begin_nested():
                    s.add(row)
            except IntegrityError:
                raise AlreadyExistsError(KIND, "id", spec.id) from None
            return self._record(row)

    def get(self, cluster_id: str) -> PhysicalCluster:
        with self._ctx.sessions.read() as s:
            return self._record(_load(s, cluster_id))

    def list(
        self, *, satellite: str | None = None, include_deleting: bool = True
    ) -> list[PhysicalCluster]:
        stmt = select(PhysicalClusterRow).order_by(PhysicalClusterRow.id)
        if satellite is not None:
            stmt = stmt.where(PhysicalClusterRow.satellite == satellite)
        if not include_deleting:
            stmt = stmt.where(PhysicalClusterRow.deleting.is_(False))
        with self._ctx.sessions.read() as s:
            return [self._record(r) for r in s.scalars(stmt)]

    def update_spec(
        self, spec: PhysicalClusterSpec, *, expected_generation: int | None
    ) -> PhysicalCluster:
        """Replace the PSC ``spec.id`` and bump its generation (spec.generation follows).

        Raises ConflictError if the stored PSC is no longer at ``expected_generation``.
        """
        satellite = _satellite_of(spec)
        with self._ctx.sessions.write() as s:
            row = _load(s, spec.id)
            if expected_generation is not None and row.generation != expected_generation:
                raise ConflictError.stale(KIND, row.id, expected_generation, row.generation)
            if row.deleting:
                raise ConflictError(
                    f"{KIND} {row.id!r} is being deleted; its spec can no longer change",
                    kind=KIND, key=row.id,
                )
            new_spec = spec.model_copy(update={"generation": row.generation + 1})
            row = self._bump(s, row, {
                "spec": seal(new_spec, self._ctx.secret_box), "satellite": satellite,
            })
            return self._record(row)

    def mark_deleting(
        self, cluster_id: str, *, expected_generation: int | None = None
    ) -> PhysicalCluster:
        """Ask the satellite to tear the cluster down. Asking twice is harmless."""
        with self._ctx.sessions.write() as s:
            row = _load(s, cluster_id)
            if expected_generation is not None and row.generation != expected_generation:
                raise ConflictError.stale(KIND, row.id, expected_generation, row.generation)
            if row.deleting:
                return self._record(row)
            spec = unseal(row.spec, self._ctx.secret_box)
            new_spec = spec.model_copy(update={"generation": row.generation + 1})
            row = self._bump(s, row, {
                "deleting": True, "spec": seal(new_spec, self._ctx.secret_box),
            })
            return self._record(row)

    def record_status(self, cluster_id: str, status: ClusterStatus) -> PhysicalCluster:
        """Keep the latest status a satellite reported. Does not bump the generation."""
        if status.id != cluster_id:
            raise ValueError(f"status is for cluster {status.id!r}, not {cluster_id!r}")
        with self._ctx.sessions.write() as s:
            stmt = (
                update(PhysicalClusterRow)
                .where(PhysicalClusterRow.id == cluster_id)
                .values(
                    observed_status=status.model_dump(mode="json"),
                    observed_generation=status.observed_generation,
                    updated_at=self._ctx.clock(),
                )
                .returning(PhysicalClusterRow.id)
                .execution_options(synchronize_session=False)
            )
            if s.execute(stmt).scalar_one_or_none() is None:
                raise NotFoundError(KIND, cluster_id)
            return self._record(_load(s, cluster_id, fresh=True))

    def remove(self, cluster_id: str) -> None:
        """Forget a cluster whose satellite confirmed it is gone. Logical clusters that
        pointed at it keep their row with ``physical_cluster_id`` cleared."""
        with self._ctx.sessions.write() as s:
            row = _load(s, cluster_id)
            if not row.deleting:
                raise ConflictError(
                    f"{KIND} {cluster_id!r} must be marked for deletion before it is removed",
                    kind=KIND, key=cluster_id,
                )
            s.execute(
                delete(PhysicalClusterRow)
                .where(PhysicalClusterRow.id == cluster_id)
                .execution_options(synchronize_session=False)
            )
            s.expunge(row)

    def _bump(
        self, s: Session, row: PhysicalClusterRow, values: dict[str, Any]
    ) -> PhysicalClusterRow:
        seen = row.generation
        stmt = (
            update(PhysicalClusterRow)
            .where(PhysicalClusterRow.id == row.id, PhysicalClusterRow.generation == seen)
            .values(**values, generation=seen + 1, updated_at=self._ctx.clock())
            .returning(PhysicalClusterRow.id)
            .execution_options(synchronize_session=False)
        )
        if s.execute(stmt).scalar_one_or_none() is None:
            current = _load(s, row.id, fresh=True)
            raise ConflictError.stale(KIND, row.id, seen, current.generation)
        return _load(s, row.id, fresh=True)

    def _record(self, row: PhysicalClusterRow) -> PhysicalCluster:
        observed = row.observed_status
        return PhysicalCluster(
            id=row.id, satellite=row.satellite, kind=PhysicalClusterKind(row.kind),
            spec=unseal(row.spec, self._ctx.secret_box), generation=row.generation,
            observed_status=ClusterStatus.model_validate(observed) if observed else None,
            observed_generation=row.observed_generation, deleting=row.deleting,
            created_at=row.created_at, updated_at=row.updated_at,
        )


def seal(spec: PhysicalClusterSpec, box: SecretBox) -> dict[str, Any]:
    """The PSC as JSON with every field in SECRET_PATHS encrypted."""
    wire = spec.to_wire()
    for path in SECRET_PATHS:
        parent = _parent(wire, path)
        if parent is not None and isinstance(parent.get(path[-1]), str):
            parent[path[-1]] = SEALED_PREFIX + box.encrypt(parent[path[-1]])
    return wire


def unseal(stored: dict[str, Any], box: SecretBox) -> PhysicalClusterSpec:
    wire = copy.deepcopy(stored)
    for path in SECRET_PATHS:
        parent = _parent(wire, path)
        if parent is None or path[-1] not in parent:
            continue
        value = parent[path[-1]]
        if not isinstance(value, str) or not value.startswith(SEALED_PREFIX):
            raise SecretDecryptionError(
                f"the stored PSC {stored.get('id')!r} has an unencrypted {'.'.join(path)}"
            )
        parent[path[-1]] = box.decrypt(value.removeprefix(SEALED_PREFIX))
    return PhysicalClusterSpec.model_validate(wire)


def _parent(doc: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    node: Any = doc
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def _satellite_of(spec: PhysicalClusterSpec) -> str:
    if not spec.satellite:
        raise ValueError(f"PSC {spec.id!r} names no satellite; set spec.satellite first")
    return spec.satellite


def _load(s: Session, cluster_id: str, *, fresh: bool = False) -> PhysicalClusterRow:
    row = s.get(PhysicalClusterRow, cluster_id, populate_existing=fresh)
    if row is None:
        raise NotFoundError(KIND, cluster_id)
    return row
