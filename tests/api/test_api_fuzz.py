"""Schemathesis walks the OpenAPI schema with generated requests: no input may cause a 5xx.

Generated references name no cluster that runs, so no request reaches Kafka: the Kafka-free
app answers exactly as the whole platform would."""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings

from streamplane.mothership.api import create_app
from streamplane.mothership.store import Store

from .conftest import TOKEN


def test_no_request_makes_the_api_fail(tmp_path: Path) -> None:
    store = Store.in_data_dir(tmp_path / "mothership")
    store.migrate()
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(store, TOKEN))
    failures: list[str] = []
    calls: list[int] = []
    try:
        for operation in schema.get_all_operations():
            op = operation.ok()

            @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy())
            def run(case: schemathesis.Case) -> None:
                case.headers = {**(case.headers or {}), "Authorization": f"Bearer {TOKEN}"}
                response = case.call()
                calls.append(response.status_code)
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                                    f"{response.text[:300]}")

            run()
    finally:
        store.close()
    assert failures == []
    assert len(calls) > 100 and any(code < 300 for code in calls)
