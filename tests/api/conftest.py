"""The REST API without Kafka: ``create_app`` over a SQLite store in a temporary directory,
called in-process. No reconciler runs, so clusters stay as the API (or a test, through the
store) leaves them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from streamplane.mothership.api import create_app
from streamplane.mothership.store import Store

TOKEN = "test-admin-token"


@dataclass(frozen=True)
class App:
    client: TestClient
    store: Store

    def cluster_count(self) -> int:
        return len(self.client.get("/v1/clusters").json())


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    store = Store.in_data_dir(tmp_path / "mothership")
    store.migrate()
    try:
        with TestClient(create_app(store, TOKEN), headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            yield App(client, store)
    finally:
        store.close()


def error_message(response: httpx.Response) -> str:
    message: str = response.json()["error"]["message"]
    return message
