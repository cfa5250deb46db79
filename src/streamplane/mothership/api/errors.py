"""How an error becomes an HTTP answer: one table from exception type to status and code.

Every error body is ``{"error": {"code": ..., "message": ...}}``. A route that knows the
exact answer raises :class:`ApiError`; the exceptions of the store, of Kafka admin and of
request validation are mapped by :data:`RULES`, the most specific type first (the lookup
follows the exception's class hierarchy, as Starlette's own handler lookup does).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from streamplane.kafka import (
    AdminError,
    ClusterUnreachableError,
    InvalidTopicError,
    TopicExistsError,
    TopicNotFoundError,
)
from streamplane.models import api as s
from streamplane.mothership.access import ClusterNotReadyError
from streamplane.mothership.store import (
    AlreadyExistsError,
    ConflictError,
    IdempotencyKeyReusedError,
    NotFoundError,
)

#: the error responses most routes document in the OpenAPI schema
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": s.ErrorOut} for code in (404, 409, 422)}


class ApiError(Exception):
    """An answer a route chose itself: this status, code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status,
                        headers=dict(headers) if headers else None)


def validation_message(exc: RequestValidationError) -> str:
    """Every problem of the request, as ``field: what is wrong``, joined by ``; ``."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        what = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "literal_error":  # "should be 'a' or 'b'": say what was sent too
            what += f", not {_short(err.get('input'))}"
        parts.append(f"{where}: {what}")
    return "; ".join(parts)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass(frozen=True)
class Rule:
    status: int
    code: str
    message: Callable[[Any], str] = str
    headers: Mapping[str, str] = field(default_factory=dict)


RULES: dict[type[Exception], Rule] = {
    RequestValidationError: Rule(422, "invalid_request", validation_message),
    NotFoundError: Rule(404, "not_found"),
    AlreadyExistsError: Rule(409, "already_exists"),
    ConflictError: Rule(409, "conflict"),
    IdempotencyKeyReusedError: Rule(422, "idempotency_key_reused"),
    ClusterNotReadyError: Rule(409, "cluster_not_ready"),
    TopicExistsError: Rule(409, "already_exists"),
    TopicNotFoundError: Rule(404, "not_found"),
    InvalidTopicError: Rule(422, "invalid_request"),
    ClusterUnreachableError: Rule(503, "cluster_unreachable", headers={"Retry-After": "5"}),
    AdminError: Rule(502, "kafka_error"),
}


def rule_for(exc: Exception) -> Rule | None:
    for cls in type(exc).__mro__:
        if cls in RULES:
            return RULES[cls]
    return None


async def _handle(_: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.code, exc.message)
    rule = rule_for(exc)
    if rule is None:  # only registered types reach here
        raise exc
    return error_response(rule.status, rule.code, rule.message(exc), rule.headers)


def install_error_handlers(app: FastAPI) -> None:
    handled: list[type[Exception]] = [ApiError, *RULES]
    for exc_type in handled:
        app.add_exception_handler(exc_type, _handle)
