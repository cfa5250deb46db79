"""The REST API: thin routes over the store, the reconciler's operations and Kafka admin."""

from __future__ import annotations

import contextlib
import hmac
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from streamplane.capacity import cluster_capacity
from streamplane.mothership import schemas as s
from streamplane.mothership.access import ClusterNotReadyError, KafkaTarget, target_for
from streamplane.mothership.kafka_admin import (
    AdminError,
    ClusterUnreachableError,
    InvalidTopicError,
    TopicExistsError,
    TopicNotFoundError,
    UserNotFoundError,
)
from streamplane.mothership.kafka_admin.models import TopicDescription
from streamplane.mothership.store import (
    AlreadyExistsError,
    ClaimOutcome,
    ConflictError,
    IdempotencyKeyReusedError,
    LogicalCluster,
    LogicalClusterStatus,
    NotFoundError,
    OperationStatus,
    Store,
    request_fingerprint,
)
from streamplane.versions import KAFKA_RELEASES, supported_versions


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)


ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": s.ErrorOut} for code in (404, 409, 422)}


def _describe_settled(target: KafkaTarget, name: str, timeout: float = 10.0) -> TopicDescription:
    """Describe a topic just created: the broker answering may not have seen it yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return target.admin.describe_topic(target.kafka_name(name))
        except TopicNotFoundError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.1)


def create_app(store: Store, admin_token: str, changed: Callable[[], None] | None = None) -> FastAPI:
    """``changed`` is called (from a worker thread) after a request changed desired state,
    so the reconciler acts at once instead of at its next tick."""
    app = FastAPI(title="Streamplane", version="1", description="Managed Apache Kafka.",
                  responses={401: {"model": s.ErrorOut}})

    # ---- errors -----------------------------------------------------------------------

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            parts.append(f"{where}: {str(err.get('msg', 'invalid')).removeprefix('Value error, ')}")
        return _error(422, "invalid_request", "; ".join(parts))

    @app.exception_handler(NotFoundError)
    async def _not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return _error(404, "not_found", str(exc))

    @app.exception_handler(AlreadyExistsError)
    async def _exists(_: Request, exc: AlreadyExistsError) -> JSONResponse:
        return _error(409, "already_exists", str(exc))

    @app.exception_handler(ConflictError)
    async def _conflict(_: Request, exc: ConflictError) -> JSONResponse:
        return _error(409, "conflict", str(exc))

    @app.exception_handler(IdempotencyKeyReusedError)
    async def _reused(_: Request, exc: IdempotencyKeyReusedError) -> JSONResponse:
        return _error(422, "idempotency_key_reused", str(exc))

    @app.exception_handler(ClusterNotReadyError)
    async def _not_ready(_: Request, exc: ClusterNotReadyError) -> JSONResponse:
        return _error(409, "cluster_not_ready", str(exc))

    @app.exception_handler(AdminError)
    async def _admin(_: Request, exc: AdminError) -> JSONResponse:
        if isinstance(exc, TopicExistsError):
            return _error(409, "already_exists", str(exc))
        if isinstance(exc, TopicNotFoundError):
            return _error(404, "not_found", str(exc))
        if isinstance(exc, InvalidTopicError):
            return _error(422, "invalid_request", str(exc))
        if isinstance(exc, ClusterUnreachableError):
            return _error(503, "cluster_unreachable", str(exc), {"Retry-After": "5"})
        return _error(502, "kafka_error", str(exc))

    # ---- auth -------------------------------------------------------------------------

    def authenticated(authorization: Annotated[str | None, Header()] = None) -> None:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), admin_token.encode()):
            raise ApiError(401, "unauthorized", "send the admin token as 'Authorization: Bearer <token>'")

    Auth = Depends(authenticated)

    # ---- helpers ----------------------------------------------------------------------

    def cluster(ref: str) -> LogicalCluster:
        try:
            return store.logical_clusters.get(ref)
        except NotFoundError:
            try:
                return store.logical_clusters.get_by_name(ref)
            except NotFoundError:
                raise ApiError(404, "not_found", f"no cluster with id or name {ref!r}") from None

    def expected_generation(if_match: str | None, body_generation: int | None = None) -> int | None:
        if if_match is None or if_match.strip() == "*":
            return body_generation
        tag = if_match.strip().removeprefix("W/").strip('"')
        if not tag.isdigit():
            raise ApiError(400, "invalid_request", f"If-Match must be a generation ETag like \"3\", got {if_match!r}")
        return int(tag)

    def idempotent(request: Request, body: BaseModel | None, key: str | None,
                   run: Callable[[], tuple[int, dict[str, Any]]],
                   redact: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> JSONResponse:
        if not key:
            try:
                status, payload = run()
            finally:
                if changed is not None:
                    changed()
            return JSONResponse(payload, status)
        if len(key) > 200:
            raise ApiError(400, "invalid_request", "Idempotency-Key must be at most 200 characters")
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
            if changed is not None:
                changed()
        store.idempotency.complete(scope, key, status_code=status,
                                   response=redact(payload) if redact else payload)
        return JSONResponse(payload, status)

    def dump(model: BaseModel) -> dict[str, Any]:
        return model.model_dump(mode="json")

    def finished_op(kind: str, target: str, request: dict[str, Any]) -> s.OperationOut:
        op = store.operations.create(kind, target, request=request)
        return s.OperationOut.of(store.operations.update(op.id, status=OperationStatus.SUCCEEDED))

    def kafka(lc: LogicalCluster) -> KafkaTarget:
        if lc.status != LogicalClusterStatus.RUNNING:
            raise ClusterNotReadyError(
                f"cluster {lc.name} is {lc.status.value}, not RUNNING; try again once it runs")
        return target_for(store, lc)

    # ---- routes -----------------------------------------------------------------------

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/clusters", dependencies=[Auth])
    def list_clusters() -> list[s.ClusterOut]:
        return [s.ClusterOut.of(lc) for lc in store.logical_clusters.list()]

    @app.post("/v1/clusters", status_code=202, dependencies=[Auth], responses=ERRORS)
    def create_cluster(body: s.ClusterCreate, request: Request,
                       idempotency_key: Annotated[str | None, Header()] = None) -> s.ClusterAccepted:
        def run() -> tuple[int, dict[str, Any]]:
            if body.kafka_version not in KAFKA_RELEASES:
                raise ApiError(422, "invalid_request", f"Kafka version {body.kafka_version!r} is not "
                               f"supported; choose one of {', '.join(supported_versions())}")
            if body.type == "dedicated" and body.cku is None:
                raise ApiError(422, "invalid_request", "a dedicated cluster needs cku (1 or more)")
            if body.type != "dedicated" and body.cku is not None:
                raise ApiError(422, "invalid_request", f"a {body.type} cluster has no cku; "
                               "only dedicated clusters are sized in CKUs")
            with store.transaction() as tx:
                lc = tx.logical_clusters.create(name=body.name, type=body.type,  # type: ignore[arg-type]
                                                kafka_version=body.kafka_version, zones=body.zones,
                                                cku=body.cku)
                op = tx.operations.create("create_cluster", lc.id, request=body.model_dump(mode="json"))
            return 202, dump(s.ClusterAccepted(operation=s.OperationOut.of(op), cluster=s.ClusterOut.of(lc)))

        return idempotent(request, body, idempotency_key, run)  # type: ignore[return-value]

    @app.get("/v1/clusters/{ref}", dependencies=[Auth], responses=ERRORS)
    def get_cluster(ref: str) -> JSONResponse:
        lc = cluster(ref)
        return JSONResponse(dump(s.ClusterOut.of(lc)), headers={"ETag": f'"{lc.generation}"'})

    @app.patch("/v1/clusters/{ref}", status_code=202, dependencies=[Auth], responses=ERRORS)
    def update_cluster(ref: str, body: s.ClusterUpdate, request: Request,
                       if_match: Annotated[str | None, Header()] = None,
                       idempotency_key: Annotated[str | None, Header()] = None) -> s.ClusterAccepted:
        def run() -> tuple[int, dict[str, Any]]:
            lc = cluster(ref)
            gen = expected_generation(if_match, body.generation)
            with store.transaction() as tx:
                new = tx.logical_clusters.update(lc.id, expected_generation=gen, name=body.name)
                op = tx.operations.create("update_cluster", lc.id, request=body.model_dump(mode="json"))
                op = tx.operations.update(op.id, status=OperationStatus.SUCCEEDED)
            return 202, dump(s.ClusterAccepted(operation=s.OperationOut.of(op), cluster=s.ClusterOut.of(new)))

        return idempotent(request, body, idempotency_key, run)  # type: ignore[return-value]

    @app.delete("/v1/clusters/{ref}", status_code=202, dependencies=[Auth], responses=ERRORS)
    def delete_cluster(ref: str, request: Request,
                       if_match: Annotated[str | None, Header()] = None,
                       idempotency_key: Annotated[str | None, Header()] = None) -> s.ClusterAccepted:
        def run() -> tuple[int, dict[str, Any]]:
            lc = cluster(ref)
            if lc.status == LogicalClusterStatus.DELETING:
                raise ApiError(409, "conflict", f"cluster {lc.name} is already being deleted")
            with store.transaction() as tx:
                new = tx.logical_clusters.mark_deleting(lc.id, expected_generation=expected_generation(if_match))
                op = tx.operations.create("delete_cluster", lc.id)
            return 202, dump(s.ClusterAccepted(operation=s.OperationOut.of(op), cluster=s.ClusterOut.of(new)))

        return idempotent(request, None, idempotency_key, run)  # type: ignore[return-value]

    @app.get("/v1/satellites", dependencies=[Auth])
    def list_satellites() -> list[s.SatelliteOut]:
        return [s.SatelliteOut(name=x.name, zone=x.zone, capacity=x.capacity)
                for x in store.satellites.list()]

    # ---- operations -------------------------------------------------------------------

    @app.get("/v1/operations/{op_id}", dependencies=[Auth], responses=ERRORS)
    def get_operation(op_id: str) -> s.OperationOut:
        return s.OperationOut.of(store.operations.get(op_id))

    @app.get("/v1/clusters/{ref}/operations", dependencies=[Auth], responses=ERRORS)
    def cluster_operations(ref: str) -> list[s.OperationOut]:
        return [s.OperationOut.of(op) for op in store.operations.list(target_id=cluster(ref).id)]

    # ---- API keys ---------------------------------------------------------------------

    @app.post("/v1/clusters/{ref}/api-keys", status_code=202, dependencies=[Auth], responses=ERRORS)
    def create_api_key(ref: str, request: Request, body: s.ApiKeyCreate | None = None,
                       idempotency_key: Annotated[str | None, Header()] = None) -> s.ApiKeyAccepted:
        body = body or s.ApiKeyCreate()

        def run() -> tuple[int, dict[str, Any]]:
            lc = cluster(ref)
            target = kafka(lc)
            issued = store.api_keys.create(lc.id, description=body.description)
            key, secret = issued.api_key.id, issued.secret.get_secret_value()
            try:
                with target.admin as admin:
                    admin.upsert_scram_user(key, secret)
                    admin.grant_client_access(key, target.prefix or None)
            except BaseException:
                store.api_keys.revoke(key)
                raise
            op = finished_op("create_api_key", lc.id, {"key": key})
            out = s.ApiKeyIssued(**s.ApiKeyOut.of(issued.api_key).model_dump(), secret=secret)
            return 202, dump(s.ApiKeyAccepted(operation=op, api_key=out))

        def redact(payload: dict[str, Any]) -> dict[str, Any]:
            return {**payload, "api_key": {**payload["api_key"],
                                           "secret": "(shown once, when the key was created)"}}

        return idempotent(request, body, idempotency_key, run, redact)  # type: ignore[return-value]

    @app.get("/v1/clusters/{ref}/api-keys", dependencies=[Auth], responses=ERRORS)
    def list_api_keys(ref: str) -> list[s.ApiKeyOut]:
        return [s.ApiKeyOut.of(k) for k in store.api_keys.list(logical_cluster_id=cluster(ref).id)]

    @app.delete("/v1/api-keys/{key}", status_code=202, dependencies=[Auth], responses=ERRORS)
    def revoke_api_key(key: str) -> s.Accepted:
        api_key = store.api_keys.get(key)
        if api_key.revoked_at is not None:
            raise ApiError(409, "conflict", f"API key {key} is already revoked")
        lc = store.logical_clusters.get(api_key.logical_cluster_id)
        if lc.status == LogicalClusterStatus.RUNNING:
            with target_for(store, lc).admin as admin:
                with contextlib.suppress(UserNotFoundError):
                    admin.delete_scram_user(key)  # gone already: a retried revoke
                admin.revoke_client_access(key)
        store.api_keys.revoke(key)
        return s.Accepted(operation=finished_op("revoke_api_key", lc.id, {"key": key}))

    # ---- topics -----------------------------------------------------------------------

    def topic_out(target: KafkaTarget, name: str, just_changed: bool = False) -> s.TopicOut:
        d = _describe_settled(target, name) if just_changed else target.admin.describe_topic(target.kafka_name(name))
        return s.TopicOut(
            name=name, partitions=len(d.partitions), replication_factor=d.replication_factor,
            configs={k: v for k, v in d.overrides.items() if v is not None},
            partition_details=[{"partition": p.id, "leader": p.leader,
                                "replicas": list(p.replicas), "isr": list(p.isr)}
                               for p in d.partitions])

    @app.get("/v1/clusters/{ref}/topics", dependencies=[Auth], responses=ERRORS)
    def list_topics(ref: str) -> list[s.TopicOut]:
        target = kafka(cluster(ref))
        with target.admin as admin:
            return [s.TopicOut(name=t.name.removeprefix(target.prefix), partitions=t.partitions,
                               replication_factor=t.replication_factor)
                    for t in admin.list_topics(prefix=target.prefix or None)]

    @app.post("/v1/clusters/{ref}/topics", status_code=202, dependencies=[Auth], responses=ERRORS)
    def create_topic(ref: str, body: s.TopicCreate, request: Request,
                     idempotency_key: Annotated[str | None, Header()] = None) -> s.TopicAccepted:
        def run() -> tuple[int, dict[str, Any]]:
            lc = cluster(ref)
            target = kafka(lc)
            limit = cluster_capacity(lc.type.value, lc.cku).partitions
            with target.admin as admin:
                used = admin.partition_count(prefix=target.prefix or None)
                if used + body.partitions > limit:
                    raise ApiError(422, "limit_exceeded",
                                   f"cluster {lc.name} may have at most {limit} partitions; it has "
                                   f"{used}, so a topic with {body.partitions} more does not fit")
                admin.create_topic(target.kafka_name(body.name), body.partitions,
                                   body.replication_factor, body.configs)
                topic = topic_out(target, body.name, just_changed=True)
            op = finished_op("create_topic", lc.id, body.model_dump(mode="json"))
            return 202, dump(s.TopicAccepted(operation=op, topic=topic))

        return idempotent(request, body, idempotency_key, run)  # type: ignore[return-value]

    @app.get("/v1/clusters/{ref}/topics/{name}", dependencies=[Auth], responses=ERRORS)
    def describe_topic(ref: str, name: str) -> s.TopicOut:
        target = kafka(cluster(ref))
        with target.admin:
            return topic_out(target, name)

    @app.patch("/v1/clusters/{ref}/topics/{name}", status_code=202, dependencies=[Auth], responses=ERRORS)
    def update_topic(ref: str, name: str, body: s.TopicUpdate) -> s.TopicAccepted:
        lc = cluster(ref)
        target = kafka(lc)
        with target.admin as admin:
            kname = target.kafka_name(name)
            current = admin.describe_topic(kname)
            if body.partitions is not None and body.partitions != len(current.partitions):
                if body.partitions < len(current.partitions):
                    raise ApiError(422, "invalid_request", "Kafka cannot reduce a topic's partitions "
                                   f"(it has {len(current.partitions)})")
                limit = cluster_capacity(lc.type.value, lc.cku).partitions
                extra = body.partitions - len(current.partitions)
                if admin.partition_count(prefix=target.prefix or None) + extra > limit:
                    raise ApiError(422, "limit_exceeded", f"cluster {lc.name} may have at most {limit} partitions")
                admin.add_partitions(kname, body.partitions)
            sets = {k: v for k, v in body.configs.items() if v is not None}
            deletes = [k for k, v in body.configs.items() if v is None]
            if sets or deletes:
                admin.alter_topic_configs(kname, sets, deletes)
            topic = topic_out(target, name)
        op = finished_op("update_topic", lc.id, body.model_dump(mode="json"))
        return s.TopicAccepted(operation=op, topic=topic)

    @app.delete("/v1/clusters/{ref}/topics/{name}", status_code=202, dependencies=[Auth], responses=ERRORS)
    def delete_topic(ref: str, name: str) -> s.Accepted:
        lc = cluster(ref)
        target = kafka(lc)
        with target.admin as admin:
            admin.delete_topic(target.kafka_name(name))
        return s.Accepted(operation=finished_op("delete_topic", lc.id, {"name": name}))

    return app
