"""API keys of a cluster: ``/v1/clusters/{ref}/api-keys`` and ``/v1/api-keys/{key}``.

Behind a gateway (basic and standard clusters) a key is checked by the gateway and Kafka
never sees it; a dedicated cluster's key is a SCRAM user with client ACLs in its Kafka.
"""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter, Request

from streamplane.kafka import UserNotFoundError
from streamplane.models import api as s
from streamplane.mothership.access import serves_through_gateway, target_for
from streamplane.mothership.api import views
from streamplane.mothership.api.deps import Auth, Ctx, IdempotencyKey, require_running
from streamplane.mothership.api.errors import ERRORS, ApiError
from streamplane.mothership.api.idempotency import dump, idempotent
from streamplane.mothership.store import LogicalClusterStatus

router = APIRouter(prefix="/v1", dependencies=[Auth])

#: what a replayed create shows instead of the secret
SECRET_SHOWN_ONCE = "(shown once, when the key was created)"


@router.post("/clusters/{ref}/api-keys", status_code=202, responses=ERRORS)
def create_api_key(ctx: Ctx, ref: str, request: Request, body: s.ApiKeyCreate | None = None,
                   idempotency_key: IdempotencyKey = None) -> s.ApiKeyAccepted:
    body = body or s.ApiKeyCreate()
    store = ctx.store

    def run() -> tuple[int, dict[str, Any]]:
        lc = ctx.cluster(ref)
        require_running(lc)
        # behind the gateway, a key is checked by the gateway and Kafka never sees it
        target = None if serves_through_gateway(lc) else ctx.kafka(lc)
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
        op = ctx.finished_op("create_api_key", lc.id, {"key": key})
        out = s.ApiKeyIssued(**views.api_key_out(issued.api_key).model_dump(), secret=secret)
        return 202, dump(s.ApiKeyAccepted(operation=op, api_key=out))

    def redact(payload: dict[str, Any]) -> dict[str, Any]:
        return {**payload, "api_key": {**payload["api_key"], "secret": SECRET_SHOWN_ONCE}}

    return idempotent(ctx, request, body, idempotency_key, run, redact)  # type: ignore[return-value]


@router.get("/clusters/{ref}/api-keys", responses=ERRORS)
def list_api_keys(ctx: Ctx, ref: str) -> list[s.ApiKeyOut]:
    return [views.api_key_out(k) for k in ctx.store.api_keys.list(logical_cluster_id=ctx.cluster(ref).id)]


@router.delete("/api-keys/{key}", status_code=202, responses=ERRORS)
def revoke_api_key(ctx: Ctx, key: str) -> s.Accepted:
    store = ctx.store
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
    return s.Accepted(operation=ctx.finished_op("revoke_api_key", lc.id, {"key": key}))
