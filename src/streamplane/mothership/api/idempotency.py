"""``Idempotency-Key``: a retried request with the same key and body is applied once and
answered with the first answer (``Idempotent-Replayed: true``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from streamplane.mothership.api.deps import ApiContext
from streamplane.mothership.api.errors import ApiError
from streamplane.mothership.store import ClaimOutcome, request_fingerprint

MAX_KEY_LENGTH = 200

Run = Callable[[], tuple[int, dict[str, Any]]]


def idempotent(ctx: ApiContext, request: Request, body: BaseModel | None, key: str | None, run: Run,
               redact: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> JSONResponse:
    """Answer with ``run()`` (status, payload), at most once per ``key``; ``redact`` is what
    a replay shows instead of the payload (a secret is shown once)."""
    if not key:
        try:
            status, payload = run()
        finally:
            ctx.notify_changed()
        return JSONResponse(payload, status)
    if len(key) > MAX_KEY_LENGTH:
        raise ApiError(400, "invalid_request", f"Idempotency-Key must be at most {MAX_KEY_LENGTH} characters")
    store = ctx.store
    scope = f"{request.method} {request.url.path}"
    fingerprint = request_fingerprint(body.model_dump(mode="json") if body else None)
    claim = store.idempotency.claim(scope, key, fingerprint)
    if claim.outcome == ClaimOutcome.REPLAY:
        return JSONResponse(claim.record.response, claim.record.status_code or 200,
                            headers={"Idempotent-Replayed": "true"})
    if claim.outcome == ClaimOutcome.IN_PROGRESS:
        raise ApiError(409, "in_progress", "a request with this Idempotency-Key is still running")
    try:
        status, payload = run()
    except BaseException:
        store.idempotency.release(scope, key)
        raise
    finally:
        ctx.notify_changed()
    store.idempotency.complete(scope, key, status_code=status,
                               response=redact(payload) if redact else payload)
    return JSONResponse(payload, status)


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")
