"""The REST API: thin routes over the store, the reconciler's operations and Kafka admin."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kafka.errors import KafkaError
from pydantic import BaseModel

from streamplane.capacity import cku_capacity, cluster_capacity
from streamplane.kafka import (
    AdminError,
    ClusterUnreachableError,
    InvalidTopicError,
    TopicExistsError,
    TopicNotFoundError,
    UserNotFoundError,
)
from streamplane.kafka.models import TopicDescription
from streamplane.loops.balancer.analyzer import Analyzer
from streamplane.loops.balancer.model import ClusterModel
from streamplane.models.status import ClusterStatus
from streamplane.mothership import schemas as s
from streamplane.mothership.access import (
    ClusterNotReadyError,
    KafkaTarget,
    serves_through_gateway,
    target_for,
)
from streamplane.mothership.balancing import BalancingService, cluster_model, dump_plan, load_summary
from streamplane.mothership.gateways import GatewaySupervisor
from streamplane.mothership.reconciler import CELL_OPERATIONS, QUARANTINE_CELL, SCALE
from streamplane.mothership.sizing import scale_in_problems
from streamplane.mothership.store import (
    AlreadyExistsError,
    ClaimOutcome,
    ClusterType,
    ConflictError,
    IdempotencyKeyReusedError,
    LogicalCluster,
    LogicalClusterStatus,
    NotFoundError,
    OperationStatus,
    PhysicalCluster,
    Store,
    request_fingerprint,
)
from streamplane.tenancy import DEFAULT_CELL
from streamplane.versions import KAFKA_RELEASES, supported_versions

#: the monitor's window for byte rates when the API reads a cluster's load
LOAD_RATE_WINDOW_S = 2.0
#: a scale-in must leave the data under this share of the remaining brokers' disks


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


def create_app(store: Store, admin_token: str, changed: Callable[[], None] | None = None,
               balancing: BalancingService | None = None,
               gateways: GatewaySupervisor | None = None) -> FastAPI:
    """``changed`` is called (from a worker thread) after a request changed desired state,
    so the reconciler acts at once instead of at its next tick."""
    tenant_protocol = gateways.security_protocol if gateways is not None else "SASL_PLAINTEXT"

    def cluster_out(lc: LogicalCluster) -> s.ClusterOut:
        return s.ClusterOut.of(lc, tenant_protocol)
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

    def running(lc: LogicalCluster) -> None:
        if lc.status != LogicalClusterStatus.RUNNING:
            raise ClusterNotReadyError(
                f"cluster {lc.name} is {lc.status.value}, not RUNNING; try again once it runs")

    def kafka(lc: LogicalCluster) -> KafkaTarget:
        running(lc)
        return target_for(store, lc)

    # ---- routes -----------------------------------------------------------------------

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/gateways", dependencies=[Auth])
    def list_gateways() -> list[s.GatewayOut]:
        """The gateways in front of the shared clusters, and the certificate each serves."""
        if gateways is None:
            return []
        return [s.GatewayOut.model_validate(g) for g in gateways.certificates()]

    @app.post("/v1/gateways/reload-tls", dependencies=[Auth], status_code=202,
              responses={409: {"model": s.ErrorOut}})
    def reload_gateway_tls() -> s.GatewayReloadOut:
        """Make every gateway load its certificate files now: new connections get the new
        certificate, open ones keep theirs. ``GET /v1/gateways`` shows what each serves."""
        if gateways is None or gateways.tls is None:
            raise ApiError(409, "tls_not_enabled",
                           "the gateways do not serve TLS: run the mothership with "
                           "--gateway-tls-cert and --gateway-tls-key")
        return s.GatewayReloadOut(asked=gateways.reload_tls())

    @app.get("/v1/clusters", dependencies=[Auth])
    def list_clusters() -> list[s.ClusterOut]:
        return [cluster_out(lc) for lc in store.logical_clusters.list()]

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
            return 202, dump(s.ClusterAccepted(operation=s.OperationOut.of(op), cluster=cluster_out(lc)))

        return idempotent(request, body, idempotency_key, run)  # type: ignore[return-value]

    @app.get("/v1/clusters/{ref}", dependencies=[Auth], responses=ERRORS)
    def get_cluster(ref: str) -> JSONResponse:
        lc = cluster(ref)
        return JSONResponse(dump(cluster_out(lc)), headers={"ETag": f'"{lc.generation}"'})

    @app.patch("/v1/clusters/{ref}", status_code=202, dependencies=[Auth], responses=ERRORS)
    def update_cluster(ref: str, body: s.ClusterUpdate, request: Request,
                       if_match: Annotated[str | None, Header()] = None,
                       idempotency_key: Annotated[str | None, Header()] = None) -> s.ClusterAccepted:
        def run() -> tuple[int, dict[str, Any]]:
            lc = cluster(ref)
            gen = expected_generation(if_match, body.generation)
            scaling = body.cku is not None and body.cku != lc.cku
            if scaling:
                assert body.cku is not None
                check_scale(lc, body.cku)
                gen = lc.generation if gen is None else gen  # two scale requests: one wins
            with store.transaction() as tx:
                try:
                    new = tx.logical_clusters.update(lc.id, expected_generation=gen, name=body.name,
                                                     cku=body.cku)
                except ConflictError as exc:
                    if scaling:
                        raise ApiError(409, "conflict", f"cluster {lc.name} changed while this request was "
                                       f"checked (another scale request?); read it again and retry: {exc}") from None
                    raise
                if scaling:
                    op = tx.operations.create("scale_cluster", lc.id,
                                              request={"from_cku": lc.cku, "cku": body.cku})
                else:
                    op = tx.operations.create("update_cluster", lc.id, request=body.model_dump(mode="json"))
                    op = tx.operations.update(op.id, status=OperationStatus.SUCCEEDED)
            return 202, dump(s.ClusterAccepted(operation=s.OperationOut.of(op), cluster=cluster_out(new)))

        return idempotent(request, body, idempotency_key, run)  # type: ignore[return-value]

    def check_scale(lc: LogicalCluster, cku: int) -> None:
        """Refuse a CKU change that cannot be done, saying why."""
        if lc.type != ClusterType.DEDICATED or lc.cku is None:
            raise ApiError(422, "invalid_request", f"cluster {lc.name} is a {lc.type.value} cluster: it has "
                           "no CKUs to scale; only dedicated clusters are sized in CKUs")
        if lc.status != LogicalClusterStatus.RUNNING:
            raise ApiError(409, "cluster_not_ready", f"cluster {lc.name} is {lc.status.value}; it can be "
                           "scaled once it is RUNNING")
        open_scale = store.operations.unfinished(lc.id, SCALE)
        if open_scale:
            raise ApiError(409, "scale_in_progress", f"cluster {lc.name} is already scaling to {lc.cku} CKU "
                           f"(operation {open_scale[0].id}); wait for it to finish")
        if cku < lc.cku:
            problems = scale_down_problems(lc, cku)
            if problems:
                raise ApiError(422, "insufficient_capacity", f"cluster {lc.name} cannot shrink to {cku} CKU "
                               f"({cku_capacity(cku).brokers} brokers): " + "; ".join(problems))

    def physical(lc: LogicalCluster) -> tuple[PhysicalCluster, ClusterStatus]:
        if lc.physical_cluster_id is None:
            raise ClusterNotReadyError(f"cluster {lc.name} has no Kafka cluster yet ({lc.status.value})")
        pc = store.physical_clusters.get(lc.physical_cluster_id)
        status = (balancing.statuses.get(pc.satellite, pc.id) if balancing is not None else None) \
            or pc.observed_status
        if status is None or not status.bootstrap:
            raise ClusterNotReadyError(f"cluster {lc.name} reports no brokers yet; try again once it runs")
        return pc, status

    def model_of(lc: LogicalCluster, rate_window_s: float) -> tuple[PhysicalCluster, ClusterModel]:
        if lc.type != ClusterType.DEDICATED:
            raise ApiError(422, "invalid_request", f"cluster {lc.name} is a {lc.type.value} tenant of a shared "
                           "cluster; load and balancing are shown for dedicated clusters")
        pc, status = physical(lc)
        try:
            return pc, asyncio.run(cluster_model(store, pc, status, rate_window_s))
        except (OSError, KafkaError, ValueError) as exc:
            raise ApiError(503, "cluster_unreachable", f"cannot read the load of cluster {lc.name}: {exc}") from None

    def scale_down_problems(lc: LogicalCluster, cku: int) -> list[str]:
        pc, model = model_of(lc, 0.0)
        return scale_in_problems(model, (b.id for b in pc.spec.brokers), cku)

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
            return 202, dump(s.ClusterAccepted(operation=s.OperationOut.of(op), cluster=cluster_out(new)))

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

    # ---- load and balancing -------------------------------------------------------------

    @app.get("/v1/clusters/{ref}/load", dependencies=[Auth], responses=ERRORS)
    def cluster_load(ref: str) -> s.ClusterLoadOut:
        lc = cluster(ref)
        pc, model = model_of(lc, LOAD_RATE_WINDOW_S)
        goals = Analyzer().goals
        balance = balancing.status(pc.id) if balancing is not None else None
        return s.ClusterLoadOut(
            cluster_id=lc.id, physical_cluster_id=pc.id,
            brokers=[b.model_dump(mode="json") for b in load_summary(model)],
            partitions=len(model.partitions),
            imbalance={g.name: g.imbalance(model) for g in goals}, notes=model.notes,
            balance=balance.model_dump(mode="json") if balance is not None else None)

    @app.get("/v1/clusters/{ref}/balance", dependencies=[Auth], responses=ERRORS)
    def cluster_balance(ref: str) -> dict[str, Any]:
        lc = cluster(ref)
        if lc.physical_cluster_id is None or balancing is None:
            raise ClusterNotReadyError(f"cluster {lc.name} is not balanced yet ({lc.status.value})")
        status = balancing.status(lc.physical_cluster_id)
        if status is None:
            raise ClusterNotReadyError(f"cluster {lc.name} has no balancer yet; try again in a few seconds")
        return status.model_dump(mode="json")

    @app.post("/v1/clusters/{ref}/rebalance", status_code=202, dependencies=[Auth], responses=ERRORS)
    def rebalance(ref: str, body: s.RebalanceRequest | None = None) -> JSONResponse:
        lc = cluster(ref)
        body = body or s.RebalanceRequest()
        pc, model = model_of(lc, LOAD_RATE_WINDOW_S)
        if body.dry_run:
            plan = Analyzer().plan(model)
            return JSONResponse({"dry_run": True, "plan": dump_plan(plan)}, 200)
        if balancing is None or not balancing.act(pc.id, "rebalance", "an operator asked for a rebalance"):
            raise ClusterNotReadyError(f"cluster {lc.name} has no balancer yet; try again in a few seconds")
        return JSONResponse({"dry_run": False, "requested": True}, 202)

    @app.post("/v1/clusters/{ref}/quarantine", status_code=202, dependencies=[Auth], responses=ERRORS)
    def quarantine(ref: str, body: s.QuarantineRequest | None = None) -> s.ClusterAccepted:
        """Move a basic/standard tenant into the quarantine cell of its shared cluster (or
        back with ``release``), online: only its partitions move."""
        body = body or s.QuarantineRequest()
        lc = cluster(ref)
        if lc.type == ClusterType.DEDICATED:
            raise ApiError(422, "invalid_request", f"cluster {lc.name} is dedicated: it has brokers of its own; "
                           "quarantine moves a basic or standard tenant into a cell of its own")
        if lc.status != LogicalClusterStatus.RUNNING or lc.physical_cluster_id is None:
            raise ApiError(409, "cluster_not_ready", f"cluster {lc.name} is {lc.status.value}; it can be "
                           "quarantined once it is RUNNING")
        pc = store.physical_clusters.get(lc.physical_cluster_id)
        now = pc.spec.tenant_cells.get(lc.id, DEFAULT_CELL)
        target = DEFAULT_CELL if body.release else QUARANTINE_CELL
        if now == target:
            raise ApiError(409, "conflict", f"cluster {lc.name} already lives in cell {target}")
        busy = store.operations.unfinished(lc.id, CELL_OPERATIONS)
        if busy:
            raise ApiError(409, "conflict", f"cluster {lc.name} is already moving between cells "
                           f"(operation {busy[0].id}); wait for it to finish")
        # the intent only: the reconciler writes the PSC (and adds the cell's brokers)
        kind = "release_cluster" if body.release else "quarantine_cluster"
        op = store.operations.create(kind, lc.id, request={"cell": target})
        if changed is not None:
            changed()
        return s.ClusterAccepted(operation=s.OperationOut.of(op), cluster=cluster_out(lc))

    @app.post("/v1/clusters/{ref}/rebalance/{action}", status_code=202, dependencies=[Auth], responses=ERRORS)
    def rebalance_action(ref: str, action: str) -> dict[str, Any]:
        lc = cluster(ref)
        if action not in ("pause", "resume", "cancel"):
            raise ApiError(404, "not_found", f"no rebalance action {action!r}; use pause, resume or cancel")
        if lc.physical_cluster_id is None or balancing is None or not balancing.act(
                lc.physical_cluster_id, action):  # type: ignore[arg-type]
            raise ApiError(409, "conflict", f"cluster {lc.name} has no rebalance running to {action}")
        return {"requested": action}

    # ---- API keys ---------------------------------------------------------------------

    @app.post("/v1/clusters/{ref}/api-keys", status_code=202, dependencies=[Auth], responses=ERRORS)
    def create_api_key(ref: str, request: Request, body: s.ApiKeyCreate | None = None,
                       idempotency_key: Annotated[str | None, Header()] = None) -> s.ApiKeyAccepted:
        body = body or s.ApiKeyCreate()

        def run() -> tuple[int, dict[str, Any]]:
            lc = cluster(ref)
            running(lc)
            # behind the gateway, a key is checked by the gateway and Kafka never sees it
            target = None if serves_through_gateway(lc) else kafka(lc)
            issued = store.api_keys.create(lc.id, description=body.description)
            key, secret = issued.api_key.id, issued.secret.get_secret_value()
            if target is not None:
                try:
                    with target.admin as admin:
                        admin.upsert_scram_user(key, secret)
                        admin.grant_client_access(key, None)
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
        # behind the gateway, revoking in the store is enough: it re-checks keys in use
        if lc.status == LogicalClusterStatus.RUNNING and not serves_through_gateway(lc):
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
