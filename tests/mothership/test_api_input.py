"""Refusals that need a running cluster: a tenant's limits and errors through its whole life.

Validation that needs no Kafka is in ``tests/api/`` (the Kafka-free app)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from streamplane.testing import wait_for

from .conftest import Platform

pytestmark = pytest.mark.kafka


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
