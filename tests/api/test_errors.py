"""The error table: each exception a route may raise becomes one status, code and message."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from streamplane.kafka import (
    AdminError,
    ClusterUnreachableError,
    InvalidTopicError,
    TopicExistsError,
    TopicNotFoundError,
)
from streamplane.mothership.access import ClusterNotReadyError
from streamplane.mothership.api.errors import ApiError, install_error_handlers
from streamplane.mothership.store import AlreadyExistsError, NotFoundError


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (ApiError(418, "teapot", "short and stout"), 418, "teapot"),
        (NotFoundError("widget", "w-1"), 404, "not_found"),
        (AlreadyExistsError("widget", "name", "w"), 409, "already_exists"),
        (ClusterNotReadyError("not yet"), 409, "cluster_not_ready"),
        (TopicExistsError("topic t exists"), 409, "already_exists"),
        (TopicNotFoundError("no topic t"), 404, "not_found"),
        (InvalidTopicError("bad topic"), 422, "invalid_request"),
        (ClusterUnreachableError("down"), 503, "cluster_unreachable"),
        (AdminError("odd"), 502, "kafka_error"),
    ],
)
def test_an_exception_becomes_its_answer(exc: Exception, status: int, code: str) -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise exc

    r = TestClient(app).get("/boom")
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)
    assert r.json()["error"]["message"] == (exc.message if isinstance(exc, ApiError) else str(exc))
    assert ("retry-after" in r.headers) == (status == 503)
