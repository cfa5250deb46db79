"""Schemathesis walks the OpenAPI schema with generated requests: no input may cause a 5xx."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

from .conftest import Platform


def _cluster_ids(platform: Platform) -> set[str]:
    with platform.client() as c:
        return {x["id"] for x in c.get("/v1/clusters").json()}


def test_no_request_makes_the_api_fail(platform: Platform) -> None:
    schema = schemathesis.openapi.from_url(f"{platform.url}/openapi.json")
    failures: list[str] = []
    calls: list[int] = []
    before = _cluster_ids(platform)
    for operation in schema.get_all_operations():
        op = operation.ok()

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def run(case: schemathesis.Case) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {platform.token}"}
            response = case.call(base_url=platform.url, timeout=30)
            calls.append(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                                f"{response.text[:300]}")

        run()
    try:
        assert failures == []
        assert len(calls) > 100 and any(code < 300 for code in calls)
    finally:
        # whatever the fuzzer created must not go on consuming the machine
        for cluster_id in _cluster_ids(platform) - before:
            with platform.client() as c:
                c.delete(f"/v1/clusters/{cluster_id}")
        for cluster_id in _cluster_ids(platform) - before:
            platform.wait_gone(cluster_id, timeout=180)
