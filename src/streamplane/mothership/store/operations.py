"""Long-running operations: a resource with a status, progress and an error."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from streamplane.mothership.store import ids
from streamplane.mothership.store._base import UNSET, RepoContext, Unset
from streamplane.mothership.store.errors import ConflictError, NotFoundError
from streamplane.mothership.store.records import Operation, OperationStatus
from streamplane.mothership.store.schema import OperationRow

KIND = "operation"
_KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class Operations:
    def __init__(self, ctx: RepoContext) -> None:
        self._ctx = ctx

    def create(
        self, kind: str, target_id: str, *, request: dict[str, Any] | None = None
    ) -> Operation:
        """A PENDING operation on ``target_id``. ``kind`` is an OperationKind or any
        other snake_case name."""
        if not _KIND_PATTERN.match(kind):
            raise ValueError(f"operation kind {kind!r} must be snake_case, e.g. create_cluster")
        now = self._ctx.clock()
        with self._ctx.sessions.write() as s:
            op_id = ids.operation_id()
            while s.get(OperationRow, op_id) is not None:
                op_id = ids.operation_id()
            row = OperationRow(
                id=op_id, kind=str(kind), target_id=target_id,
                status=OperationStatus.PENDING.value, progress=0.0, error=None,
                request=request, created_at=now, updated_at=now, finished_at=None,
            )
            s.add(row)
            s.flush()
            return Operation.model_validate(row)

    def get(self, op_id: str) -> Operation:
        with self._ctx.sessions.read() as s:
            row = s.get(OperationRow, op_id)
            if row is None:
                raise NotFoundError(KIND, op_id)
            return Operation.model_validate(row)

    def unfinished(self, target_id: str, kinds: Iterable[str]) -> list[Operation]:
        """The operations of these kinds on ``target_id`` that are still PENDING or RUNNING,
        newest first: what a new request of the same kind would run into."""
        stmt = (select(OperationRow)
                .where(OperationRow.target_id == target_id,
                       OperationRow.kind.in_([str(k) for k in kinds]),
                       OperationRow.status.in_([s.value for s in OperationStatus if not s.finished]))
                .order_by(OperationRow.created_at.desc(), OperationRow.id))
        with self._ctx.sessions.read() as session:
            return [Operation.model_validate(r) for r in session.scalars(stmt)]

    def list(
        self,
        *,
        target_id: str | None = None,
        kind: str | None = None,
        status: OperationStatus | None = None,
        limit: int | None = 100,
    ) -> list[Operation]:
        """Newest first."""
        stmt = select(OperationRow).order_by(OperationRow.created_at.desc(), OperationRow.id)
        if target_id is not None:
            stmt = stmt.where(OperationRow.target_id == target_id)
        if kind is not None:
            stmt = stmt.where(OperationRow.kind == str(kind))
        if status is not None:
            stmt = stmt.where(OperationRow.status == status.value)
        with self._ctx.sessions.read() as s:
            return [Operation.model_validate(r) for r in s.scalars(stmt.limit(limit))]

    def update(
        self,
        op_id: str,
        *,
        status: OperationStatus | None = None,
        progress: float | None = None,
        error: str | Unset | None = UNSET,
    ) -> Operation:
        """Move an operation along. SUCCEEDED sets progress to 100; SUCCEEDED and FAILED
        are final, and changing a finished operation raises ConflictError."""
        if progress is not None and not (math.isfinite(progress) and 0 <= progress <= 100):
            raise ValueError(f"progress must be between 0 and 100, got {progress}")
        with self._ctx.sessions.write() as s:
            row = s.get(OperationRow, op_id, with_for_update=True)
            if row is None:
                raise NotFoundError(KIND, op_id)
            if OperationStatus(row.status).finished:
                raise ConflictError(
                    f"{KIND} {op_id!r} already finished as {row.status}; it cannot change",
                    kind=KIND, key=op_id,
                )
            now = self._ctx.clock()
            if status is not None:
                row.status = OperationStatus(status).value
                if status.finished:
                    row.finished_at = now
                if status == OperationStatus.SUCCEEDED:
                    row.progress = 100.0
            if progress is not None and status != OperationStatus.SUCCEEDED:
                row.progress = float(progress)
            if error is not UNSET:
                row.error = error
            row.updated_at = now
            s.flush()
            return Operation.model_validate(row)
