"""Bad input gets a 4xx that says what is wrong, and nothing is created."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from streamplane.testing import wait_for

from .conftest import Platform


def _count(platform: Platform) -> int:
    with platform.client() as c:
        return len(c.get("/v1/clusters").json())


def test_no_token_no_access(platform: Platform) -> None:
    with platform.client(token="wrong") as c:
        r = c.get("/v1/clusters")
    assert r.status_code == 401
    assert "Bearer" in r.json()["error"]["message"]


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
def test_invalid_cluster_requests_are_refused(platform: Platform, body: dict[str, Any], says: str) -> None:
    before = _count(platform)
    with platform.client() as c:
        r = c.post("/v1/clusters", json=body)
    assert r.status_code == 422, r.text
    assert says in r.json()["error"]["message"]
    assert _count(platform) == before


def test_unknown_cluster_and_operation_are_404(platform: Platform) -> None:
    with platform.client() as c:
        for path in ("/v1/clusters/nope", "/v1/clusters/nope/topics", "/v1/operations/op-nope",
                     "/v1/clusters/nope/api-keys"):
            r = c.get(path)
            assert r.status_code == 404, path
            assert "nope" in r.json()["error"]["message"]
        assert c.delete("/v1/clusters/nope").status_code == 404
        assert c.delete("/v1/api-keys/AKNOPE").status_code == 404


def test_basic_tenant_lifecycle_limits_and_errors(platform: Platform) -> None:
    created = platform.create("tenant-a", type="basic")
    assert created["operation"]["kind"] == "create_cluster"
    cluster = platform.wait_status("tenant-a", "RUNNING")
    assert cluster["bootstrap"]
    with platform.client() as c:
        # same name twice: refused while the first lives
        r = c.post("/v1/clusters", json={"name": "tenant-a", "type": "basic"})
        assert r.status_code == 409 and "tenant-a" in r.json()["error"]["message"]

        # a tenant of a shared cluster has no CKUs to scale
        r = c.patch("/v1/clusters/tenant-a", json={"cku": 2})
        assert r.status_code == 422 and "only dedicated clusters" in r.json()["error"]["message"], r.text

        r = c.post("/v1/clusters/tenant-a/topics", json={"name": "orders", "partitions": 3})
        assert r.status_code == 202, r.text
        assert r.json()["topic"]["partitions"] == 3
        r = c.post("/v1/clusters/tenant-a/topics", json={"name": "orders", "partitions": 3})
        assert r.status_code == 409
        r = c.post("/v1/clusters/tenant-a/topics", json={"name": "big", "partitions": 98})
        assert r.status_code == 422
        assert "at most 100 partitions" in r.json()["error"]["message"]
        assert [t["name"] for t in c.get("/v1/clusters/tenant-a/topics").json()] == ["orders"]

        r = c.patch("/v1/clusters/tenant-a/topics/orders",
                    json={"configs": {"retention.ms": "3600000"}, "partitions": 5})
        assert r.status_code == 202, r.text
        # a broker answers config reads from its own copy of the metadata, which may lag a
        # moment behind the change: what a user sees converges, so poll for it
        def described(check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
            def look() -> dict[str, Any] | None:
                d: dict[str, Any] = c.get("/v1/clusters/tenant-a/topics/orders").json()
                return d if check(d) else None
            return wait_for(look, 30, "the topic change to show")

        d = described(lambda d: d["configs"].get("retention.ms") == "3600000")
        assert d["partitions"] == 5 and len(d["partition_details"]) == 5
        r = c.patch("/v1/clusters/tenant-a/topics/orders", json={"partitions": 2})
        assert r.status_code == 422 and "cannot reduce" in r.json()["error"]["message"]
        r = c.patch("/v1/clusters/tenant-a/topics/orders", json={"configs": {"retention.ms": None}})
        assert r.status_code == 202
        described(lambda d: "retention.ms" not in d["configs"])
        assert c.delete("/v1/clusters/tenant-a/topics/orders").status_code == 202
        assert c.get("/v1/clusters/tenant-a/topics/orders").status_code == 404
        assert c.get("/v1/clusters/tenant-a/topics").json() == []

        key = c.post("/v1/clusters/tenant-a/api-keys", json={"description": "ci"}).json()["api_key"]
        assert key["secret"] and key["key"].startswith("AK")
        assert c.delete(f"/v1/api-keys/{key['key']}").status_code == 202
        r = c.delete(f"/v1/api-keys/{key['key']}")
        assert r.status_code == 409 and "already revoked" in r.json()["error"]["message"]

        etag = c.get("/v1/clusters/tenant-a").headers["etag"]
        r = c.patch("/v1/clusters/tenant-a", json={"name": "tenant-a2"}, headers={"If-Match": '"999"'})
        assert r.status_code == 409
        r = c.patch("/v1/clusters/tenant-a", json={"name": "tenant-a2"}, headers={"If-Match": etag})
        assert r.status_code == 202 and r.json()["cluster"]["name"] == "tenant-a2"

        assert c.delete("/v1/clusters/tenant-a2").status_code == 202
        r = c.delete("/v1/clusters/tenant-a2")
        assert r.status_code in (404, 409)
    platform.wait_gone("tenant-a2")
    with platform.client() as c:
        assert c.delete("/v1/clusters/tenant-a2").status_code == 404


def test_idempotency_key_replays_and_refuses_a_different_body(platform: Platform) -> None:
    body = {"name": "idem", "type": "basic"}
    with platform.client() as c:
        first = c.post("/v1/clusters", json=body, headers={"Idempotency-Key": "k-123"})
        again = c.post("/v1/clusters", json=body, headers={"Idempotency-Key": "k-123"})
        assert first.status_code == again.status_code == 202
        assert again.json()["cluster"]["id"] == first.json()["cluster"]["id"]
        assert again.headers.get("idempotent-replayed") == "true"
        other = c.post("/v1/clusters", json={**body, "name": "idem2"}, headers={"Idempotency-Key": "k-123"})
        assert other.status_code == 422
        assert [x["name"] for x in c.get("/v1/clusters").json()].count("idem") == 1
    platform.delete("idem")
