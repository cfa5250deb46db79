"""A whole embedded platform (system cluster, mothership, local satellite) for API tests."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from streamplane.cli.local import LocalDeployment
from streamplane.mothership.server import MothershipLayout
from streamplane.testing import Platform, cli, parse_properties, streamplane, wait_for

__all__ = ["Platform", "cli", "parse_properties", "streamplane"]

BROKER_HEAP_MB = "256"


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
