"""A whole embedded platform (system cluster, mothership, local satellite) for API tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from streamplane.cli.local import LocalDeployment
from streamplane.mothership.server import MothershipLayout
from streamplane.testing import wait_for

BROKER_HEAP_MB = "256"


@dataclass
class Platform:
    data_dir: Path
    url: str
    token: str

    @property
    def local(self) -> LocalDeployment:
        return LocalDeployment(self.data_dir, channel_file=MothershipLayout(self.data_dir).channel_file)

    def client(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30,
                            headers={"Authorization": f"Bearer {token or self.token}"})

    def cluster(self, ref: str) -> dict[str, Any] | None:
        with self.client() as c:
            r = c.get(f"/v1/clusters/{ref}")
        if r.status_code == 404:
            return None
        r.raise_for_status()
        data: dict[str, Any] = r.json()
        return data

    def create(self, name: str, **fields: Any) -> dict[str, Any]:
        with self.client() as c:
            r = c.post("/v1/clusters", json={"name": name, **fields})
        assert r.status_code == 202, r.text
        data: dict[str, Any] = r.json()
        return data

    def wait_status(self, ref: str, status: str, timeout: float = 180) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            c = self.cluster(ref)
            if c is not None and c["status"] == "FAILED" and status != "FAILED":
                raise AssertionError(f"cluster {ref} FAILED: {c['status_reason']}")
            return c if c is not None and c["status"] == status else None

        return wait_for(reached, timeout, f"cluster {ref} to be {status}", interval=0.5)

    def wait_gone(self, ref: str, timeout: float = 120) -> None:
        wait_for(lambda: self.cluster(ref) is None, timeout, f"cluster {ref} to be deleted", interval=0.5)

    def delete(self, ref: str) -> None:
        with self.client() as c:
            r = c.delete(f"/v1/clusters/{ref}")
        assert r.status_code == 202, r.text
        self.wait_gone(ref)


def streamplane(*args: str, timeout: float = 300, env: dict[str, str] | None = None,
                ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streamplane", *args], capture_output=True, text=True,
                          timeout=timeout, check=False, env={**os.environ, **(env or {})})


def cli(platform: Platform, *args: str, timeout: float = 300) -> str:
    """``streamplane ARGS... --data-dir ...``, which must succeed; its stdout."""
    res = streamplane(*args, "--data-dir", str(platform.data_dir), timeout=timeout)
    assert res.returncode == 0, f"streamplane {' '.join(args)} failed:\n{res.stdout}{res.stderr}"
    return res.stdout


def parse_properties(text: str) -> dict[str, str]:
    props = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            props[key.strip()] = value.strip()
    return props


def start_platform(data_dir: Path, shared_db: bool = True, env: dict[str, str] | None = None) -> Platform:
    """``streamplane up --detach`` in ``data_dir``, on STREAMPLANE_TEST_MOTHERSHIP_DB if set
    and ``shared_db`` (one platform per database: its secrets are sealed with its data
    dir's key), else on SQLite in the data dir."""
    env = {"STREAMPLANE_BROKER_HEAP_MB": BROKER_HEAP_MB, **(env or {})}
    db = os.environ.get("STREAMPLANE_TEST_MOTHERSHIP_DB") if shared_db else None
    args = ["up", "--detach", "--data-dir", str(data_dir)] + (["--db", db] if db else [])
    res = streamplane(*args, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    layout = MothershipLayout(data_dir)
    url = json.loads(layout.endpoint_file.read_text())["url"]
    return Platform(data_dir, url, layout.token_file.read_text().strip())


@contextmanager
def running_platform(data_dir: Path, shared_db: bool = True,
                     env: dict[str, str] | None = None) -> Iterator[Platform]:
    try:
        yield start_platform(data_dir, shared_db, env)
    finally:
        streamplane("down", "--data-dir", str(data_dir))


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(tmp_path_factory.mktemp("platform")) as platform:
        yield platform


@dataclass
class ExtraSatellite:
    local: LocalDeployment

    def stop(self) -> None:
        self.local.down()

    def start(self) -> int:
        return self.local.start_satellite()


@pytest.fixture(scope="session")
def zone_b(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExtraSatellite]:
    """A second satellite ("zone-b") with room for exactly one 3-broker cluster."""
    local = LocalDeployment(tmp_path_factory.mktemp("zone-b"), satellite_name="zone-b", zone="zone-b",
                            max_brokers=3, channel_file=MothershipLayout(platform.data_dir).channel_file)
    sat = ExtraSatellite(local)
    try:
        sat.start()
        wait_for(lambda: _announced(platform, "zone-b"), 60, "satellite zone-b to announce itself")
        yield sat
    finally:
        local.down()


def _announced(platform: Platform, name: str) -> bool:
    with platform.client() as c:
        return any(s["name"] == name for s in c.get("/v1/satellites").json())


def settle(seconds: float) -> None:
    """Give a background process a moment where a test must show something does NOT happen."""
    time.sleep(seconds)
