"""Idempotency keys: a retried request gets the first answer instead of a second effect."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from streamplane.mothership.store._base import RepoContext
from streamplane.mothership.store.errors import (
    ConflictError,
    IdempotencyKeyReusedError,
    NotFoundError,
)
from streamplane.mothership.store.records import (
    ClaimOutcome,
    IdempotencyClaim,
    IdempotencyRecord,
)
from streamplane.mothership.store.schema import IdempotencyKeyRow

KIND = "idempotency key"
#: a claim nobody completed for this long belongs to a request that died; it may be retaken
DEFAULT_CLAIM_TTL = timedelta(minutes=5)


def request_fingerprint(body: Any) -> str:
    """sha256 of the body as canonical JSON: the same document hashes the same no matter
    how its keys were ordered or spaced."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyKeys:
    def __init__(self, ctx: RepoContext) -> None:
        self._ctx = ctx

    def claim(
        self,
        scope: str,
        key: str,
        fingerprint: str,
        *,
        claim_ttl: timedelta = DEFAULT_CLAIM_TTL,
    ) -> IdempotencyClaim:
        """Claim ``key`` within ``scope`` (e.g. route and principal) for a request.

        CLAIMED: the caller does the work, then calls complete() (or release() if it did
        nothing). REPLAY: the same request was answered before; send ``record``'s response.
        IN_PROGRESS: the same request is being handled right now. A claim with a different
        fingerprint raises IdempotencyKeyReusedError.
        """
        now = self._ctx.clock()
        with self._ctx.sessions.write() as s:
            row = s.get(IdempotencyKeyRow, (scope, key), with_for_update=True)
            if row is None:
                row = IdempotencyKeyRow(
                    scope=scope, key=key, fingerprint=fingerprint, status_code=None,
                    response=None, operation_id=None, created_at=now, completed_at=None,
                )
                try:
                    with s.begin_nested():
                        s.add(row)
                    return _claim(ClaimOutcome.CLAIMED, row)
                except IntegrityError:
                    # a concurrent claim of the same key committed first; judge against it
                    row = _load(s, scope, key, lock=True)
            if row.fingerprint != fingerprint:
                raise IdempotencyKeyReusedError(scope, key)
            if row.status_code is not None:
                return _claim(ClaimOutcome.REPLAY, row)
            if now - row.created_at >= claim_ttl:
                row.created_at = now
                s.flush()
                return _claim(ClaimOutcome.CLAIMED, row)
            return _claim(ClaimOutcome.IN_PROGRESS, row)

    def complete(
        self,
        scope: str,
        key: str,
        *,
        status_code: int,
        response: Any,
        operation_id: str | None = None,
    ) -> IdempotencyRecord:
        """Store the answer to a claimed request, for replay."""
        with self._ctx.sessions.write() as s:
            row = _load(s, scope, key, lock=True)
            if row.status_code is not None:
                raise ConflictError(
                    f"{KIND} {key!r} on {scope} was already completed",
                    kind=KIND, key=key,
                )
            row.status_code = status_code
            row.response = response
            row.operation_id = operation_id
            row.completed_at = self._ctx.clock()
            s.flush()
            return IdempotencyRecord.model_validate(row)

    def release(self, scope: str, key: str) -> None:
        """Drop an uncompleted claim, so a retry is handled afresh. Completed keys stay."""
        with self._ctx.sessions.write() as s:
            s.execute(
                delete(IdempotencyKeyRow)
                .where(
                    IdempotencyKeyRow.scope == scope,
                    IdempotencyKeyRow.key == key,
                    IdempotencyKeyRow.status_code.is_(None),
                )
                .execution_options(synchronize_session=False)
            )

    def get(self, scope: str, key: str) -> IdempotencyRecord:
        with self._ctx.sessions.read() as s:
            return IdempotencyRecord.model_validate(_load(s, scope, key))

    def purge(self, *, created_before: datetime) -> int:
        """Forget keys older than the retention period; returns how many went."""
        with self._ctx.sessions.write() as s:
            result = s.execute(
                delete(IdempotencyKeyRow)
                .where(IdempotencyKeyRow.created_at < created_before)
                .returning(IdempotencyKeyRow.key)
                .execution_options(synchronize_session=False)
            )
            return len(result.all())


def _claim(outcome: ClaimOutcome, row: IdempotencyKeyRow) -> IdempotencyClaim:
    return IdempotencyClaim(outcome=outcome, record=IdempotencyRecord.model_validate(row))


def _load(s: Session, scope: str, key: str, *, lock: bool = False) -> IdempotencyKeyRow:
    row = s.get(
        IdempotencyKeyRow, (scope, key), with_for_update=lock, populate_existing=lock
    )
    if row is None:
        raise NotFoundError(KIND, f"{scope} {key}")
    return row
