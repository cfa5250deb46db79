"""Bad input gets a 4xx that says what is wrong, and nothing is created (no Kafka needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from streamplane.mothership.api.app import build_app
from streamplane.mothership.api.deps import ApiContext
from streamplane.mothership.api.routes import clusters
from streamplane.mothership.store import LogicalClusterStatus, Store

from .conftest import TOKEN, App, error_message


def test_no_token_no_access(app: App) -> None:
    r = app.client.get("/v1/clusters", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    assert "Bearer" in error_message(r)
    assert app.client.get("/v1/clusters", headers={"Authorization": ""}).status_code == 401


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"name": "bad name!", "type": "dedicated", "cku": 1}, "name"),
        ({"name": "-leading-dash", "type": "dedicated", "cku": 1}, "name"),
        ({"name": "x" * 70, "type": "dedicated", "cku": 1}, "name"),
        ({"name": "neg", "type": "dedicated", "cku": -1}, "cku"),
        ({"name": "huge", "type": "dedicated", "cku": 1000}, "cku"),
        ({"name": "nocku", "type": "dedicated"}, "needs cku"),
        ({"name": "basic-cku", "type": "basic", "cku": 2}, "has no cku"),
        ({"name": "old", "type": "dedicated", "cku": 1, "kafka_version": "2.8.0"}, "is not supported"),
        ({"name": "what", "type": "premium"}, "type"),
        ({"name": "extra", "type": "basic", "color": "blue"}, "color"),
    ],
)
def test_invalid_cluster_requests_are_refused(app: App, body: dict[str, Any], says: str) -> None:
    before = app.cluster_count()
    r = app.client.post("/v1/clusters", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_request"
    assert says in error_message(r)
    assert app.cluster_count() == before


def test_unknown_cluster_and_operation_are_404(app: App) -> None:
    c = app.client
    for path in ("/v1/clusters/nope", "/v1/clusters/nope/topics", "/v1/operations/op-nope",
                 "/v1/clusters/nope/api-keys", "/v1/clusters/nope/load", "/v1/clusters/nope/balance"):
        r = c.get(path)
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] == "not_found"
        assert "nope" in error_message(r)
    assert c.delete("/v1/clusters/nope").status_code == 404
    assert c.delete("/v1/api-keys/AKNOPE").status_code == 404
    assert c.post("/v1/clusters/nope/rebalance", json={"dry_run": True}).status_code == 404


def test_idempotency_key_replays_and_refuses_a_different_body(app: App) -> None:
    c = app.client
    body = {"name": "idem", "type": "basic"}
    first = c.post("/v1/clusters", json=body, headers={"Idempotency-Key": "k-123"})
    again = c.post("/v1/clusters", json=body, headers={"Idempotency-Key": "k-123"})
    assert first.status_code == again.status_code == 202
    assert again.json()["cluster"]["id"] == first.json()["cluster"]["id"]
    assert again.headers.get("idempotent-replayed") == "true"
    other = c.post("/v1/clusters", json={**body, "name": "idem2"}, headers={"Idempotency-Key": "k-123"})
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert [x["name"] for x in c.get("/v1/clusters").json()].count("idem") == 1
    r = c.post("/v1/clusters", json=body, headers={"Idempotency-Key": "k" * 201})
    assert r.status_code == 400 and "at most 200" in error_message(r)


def test_the_same_name_twice_and_a_stale_etag_are_conflicts(app: App) -> None:
    c = app.client
    assert c.post("/v1/clusters", json={"name": "tenant-a", "type": "basic"}).status_code == 202
    r = c.post("/v1/clusters", json={"name": "tenant-a", "type": "basic"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_exists"
    assert "tenant-a" in error_message(r)

    etag = c.get("/v1/clusters/tenant-a").headers["etag"]
    r = c.patch("/v1/clusters/tenant-a", json={"name": "tenant-a2"}, headers={"If-Match": '"999"'})
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
    r = c.patch("/v1/clusters/tenant-a", json={"name": "tenant-a2"}, headers={"If-Match": "soon"})
    assert r.status_code == 400 and "If-Match" in error_message(r)
    r = c.patch("/v1/clusters/tenant-a", json={"name": "tenant-a2"}, headers={"If-Match": etag})
    assert r.status_code == 202 and r.json()["cluster"]["name"] == "tenant-a2"

    assert c.delete("/v1/clusters/tenant-a2").status_code == 202
    r = c.delete("/v1/clusters/tenant-a2")
    assert r.status_code == 409 and "already being deleted" in error_message(r)


def test_what_needs_a_running_cluster_says_so(app: App) -> None:
    c = app.client
    c.post("/v1/clusters", json={"name": "young", "type": "basic"})
    c.post("/v1/clusters", json={"name": "big", "type": "dedicated", "cku": 2})
    for method, path, body in (("GET", "/v1/clusters/young/topics", None),
                               ("POST", "/v1/clusters/young/topics", {"name": "t"}),
                               ("POST", "/v1/clusters/young/api-keys", {}),
                               ("PATCH", "/v1/clusters/big", {"cku": 1}),
                               ("POST", "/v1/clusters/young/quarantine", {}),
                               ("GET", "/v1/clusters/big/load", None),
                               ("GET", "/v1/clusters/big/balance", None)):
        r = c.request(method, path, json=body)
        assert r.status_code == 409, (method, path, r.text)
        assert r.json()["error"]["code"] == "cluster_not_ready", (method, path)
    assert "PROVISIONING" in error_message(c.get("/v1/clusters/young/topics"))


def test_load_balance_and_scale_are_for_dedicated_clusters(app: App) -> None:
    c = app.client
    lc = c.post("/v1/clusters", json={"name": "tenant", "type": "basic"}).json()["cluster"]
    app.store.logical_clusters.set_status(lc["id"], LogicalClusterStatus.RUNNING, bootstrap="127.0.0.1:1")
    r = c.patch("/v1/clusters/tenant", json={"cku": 2})
    assert r.status_code == 422 and "only dedicated clusters" in error_message(r)
    for r in (c.get("/v1/clusters/tenant/load"), c.post("/v1/clusters/tenant/rebalance", json={"dry_run": True})):
        assert r.status_code == 422 and "shown for dedicated clusters" in error_message(r), r.text
    r = c.post("/v1/clusters/tenant/rebalance/stop")
    assert r.status_code == 404 and "use pause, resume or cancel" in error_message(r)
    r = c.post("/v1/clusters/tenant/rebalance/pause")
    assert r.status_code == 409 and "no rebalance running to pause" in error_message(r)


def test_revoking_a_key_twice_is_a_conflict(app: App) -> None:
    c = app.client
    lc = c.post("/v1/clusters", json={"name": "shop", "type": "basic"}).json()["cluster"]
    app.store.logical_clusters.set_status(lc["id"], LogicalClusterStatus.RUNNING, bootstrap="127.0.0.1:1")
    # behind the gateway, a key lives in the store only: no Kafka is asked
    key = c.post("/v1/clusters/shop/api-keys", json={"description": "ci"}).json()["api_key"]
    assert key["secret"] and key["key"].startswith("AK")
    assert c.delete(f"/v1/api-keys/{key['key']}").status_code == 202
    r = c.delete(f"/v1/api-keys/{key['key']}")
    assert r.status_code == 409 and "already revoked" in error_message(r)


def test_without_gateways_there_is_no_tls_to_reload(app: App) -> None:
    assert app.client.get("/v1/gateways").json() == []
    r = app.client.post("/v1/gateways/reload-tls")
    assert r.status_code == 409 and r.json()["error"]["code"] == "tls_not_enabled"


def test_a_router_is_served_alone(tmp_path: Path) -> None:
    store = Store.in_data_dir(tmp_path / "mothership")
    store.migrate()
    try:
        app = build_app(ApiContext(store, TOKEN), routers=[clusters.router])
        with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            assert c.post("/v1/clusters", json={"name": "solo", "type": "basic"}).status_code == 202
            assert c.get("/v1/clusters/solo").json()["name"] == "solo"
            assert c.get("/v1/clusters/solo/topics").status_code == 404  # no topics router here
    finally:
        store.close()
