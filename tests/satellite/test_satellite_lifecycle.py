"""Adding, updating and removing clusters on a running satellite; unreadable specs."""

from __future__ import annotations

import json
import secrets
import time

import psutil

from streamplane.models.psc import PhysicalClusterSpec
from streamplane.models.status import ClusterState
from streamplane.testing import wait_for

from .conftest import RunningCluster

SOLO_PASSWORD = "solo-" + secrets.token_hex(8)


def solo_spec(generation: int = 1, retention_hours: str = "24",
              password: str = SOLO_PASSWORD) -> PhysicalClusterSpec:
    return PhysicalClusterSpec.model_validate({
        "id": "solo", "generation": generation, "brokers": [{"id": 7, "zone": "zone-a"}],
        "broker_configs": {"log.retention.hours": retention_hours},
        "jvm": {"heap_mb": 256},
        "super_user": {"password": password},
    })


def test_unreadable_desired_state_is_reported_and_creates_nothing(trio: RunningCluster) -> None:
    layout = trio.local.layout
    broken = layout.desired_dir / "broken.json"
    broken.write_text(json.dumps({"id": "broken", "brokers": [], "super_user": {"password": "x"}}))
    try:
        def reported() -> str | None:
            beat = trio.local.heartbeat() or {}
            errors = beat.get("source_errors") or {}
            return errors.get("broken") if isinstance(errors, dict) else None

        message = wait_for(reported, 20, "the satellite to report the broken spec")
        assert "at least one broker" in message
        assert not layout.cluster("broken").root.exists()
        assert trio.local.status("broken") is None
        assert trio.status().status == ClusterState.HEALTHY
    finally:
        broken.unlink()


def test_a_second_cluster_is_added_updated_and_removed_without_touching_the_first(
    trio: RunningCluster,
) -> None:
    trio_pids = {b.id: b.pid for b in trio.status().brokers}
    local = trio.local
    solo = RunningCluster(local, solo_spec())
    local.source.submit(solo.psc)
    first = solo.wait_healthy()
    [broker] = first.brokers
    assert broker.id == 7 and broker.pid

    # generation 2 changes a broker config: the satellite restarts the broker to apply it
    solo.psc = solo_spec(generation=2, retention_hours="48")
    local.source.submit(solo.psc)
    second = solo.wait_healthy(since=time.time())
    assert second.observed_generation == 2
    assert second.brokers[0].pid != broker.pid
    config = local.layout.cluster("solo").config_file(7).read_text()
    assert "log.retention.hours=48" in config

    # a spec that would lock the satellite out of its own cluster is refused, not applied
    local.source.submit(solo_spec(generation=3, retention_hours="48", password="x" * 20))
    refused = wait_for(lambda: (st := local.status("solo")) and st.last_error and st, 20,
                       "the satellite to refuse the password change")
    assert "super-user of a running cluster cannot change" in (refused.last_error or "")
    assert refused.observed_generation == 2 and refused.brokers[0].pid == second.brokers[0].pid

    local.source.withdraw("solo")
    cluster_dir = local.layout.cluster("solo").root
    wait_for(lambda: not cluster_dir.exists() and local.status("solo") is None, 60,
             "the satellite to stop and delete cluster solo")
    pid = second.brokers[0].pid
    assert pid is not None
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert {b.id: b.pid for b in trio.status().brokers} == trio_pids
    assert trio.status().status == ClusterState.HEALTHY
