"""Placement over two satellites, a satellite away during provisioning, a mothership killed."""

from __future__ import annotations

import os
import signal
import time
import uuid
from typing import Any

import psutil

from streamplane.testing import SequenceProducer, consume_sequences, scram_client_config, wait_for

from .conftest import ExtraSatellite, Platform, settle


def _clusters_dirs(local_dir: Any) -> set[str]:
    root = local_dir / "clusters"
    return {p.name for p in root.iterdir()} if root.exists() else set()


def _round_trip(platform: Platform, ref: str, messages: int = 200) -> None:
    with platform.client() as c:
        key = c.post(f"/v1/clusters/{ref}/api-keys").json()["api_key"]
        topic = f"rt-{uuid.uuid4().hex[:6]}"
        r = c.post(f"/v1/clusters/{ref}/topics", json={"name": topic, "partitions": 3})
        assert r.status_code == 202, r.text
    bootstrap = platform.cluster(ref)["bootstrap"]  # type: ignore[index]
    conf = scram_client_config(bootstrap, key["key"], key["secret"])
    producer = SequenceProducer(conf, topic, rate_per_s=1000).start()
    wait_for(lambda: len(producer.acked) >= messages, 60, f"{messages} acknowledged messages")
    producer.stop()
    assert producer.errors == []
    assert sorted(consume_sequences(conf, topic, len(producer.acked), 60)) == sorted(producer.acked)


def _broker_pids(sat_dir: Any, pc: str) -> set[int]:
    return {p.pid for p in psutil.process_iter(["cmdline"])
            if any(f"/clusters/{pc}/" in part and str(sat_dir) in part for part in (p.info["cmdline"] or []))}


def test_two_clusters_on_two_satellites_and_deleting_one_leaves_the_other(
    platform: Platform, zone_b: ExtraSatellite,
) -> None:
    local_dir, b_dir = platform.data_dir, zone_b.local.data_dir
    platform.create("alpha", type="dedicated", cku=1)
    alpha = platform.wait_status("alpha", "RUNNING")
    on_local = _clusters_dirs(local_dir)
    platform.create("beta", type="dedicated", cku=1)
    beta = platform.wait_status("beta", "RUNNING")
    on_b = _clusters_dirs(b_dir)
    assert len(on_b) == 1, "alpha should have gone to the empty satellite zone-b"
    [alpha_pc] = on_b
    [beta_pc] = _clusters_dirs(local_dir) - on_local
    assert alpha["bootstrap"] != beta["bootstrap"]
    beta_pids = _broker_pids(local_dir, beta_pc)
    assert len(beta_pids) == 3

    _round_trip(platform, "alpha")
    platform.delete("alpha")
    wait_for(lambda: not _clusters_dirs(b_dir) and not _broker_pids(b_dir, alpha_pc), 60,
             "zone-b to delete alpha's processes and data")
    assert _broker_pids(local_dir, beta_pc) == beta_pids
    assert platform.cluster("beta")["status"] == "RUNNING"  # type: ignore[index]
    _round_trip(platform, "beta")
    platform.delete("beta")
    assert not (local_dir / "clusters" / beta_pc).exists()


def test_a_cluster_waits_for_its_satellite_to_come_back(platform: Platform, zone_b: ExtraSatellite) -> None:
    zone_b.stop()
    platform.create("gamma", type="dedicated", cku=1)
    wait_for(lambda: "zone-b" in (platform.cluster("gamma") or {}).get("status_reason", ""), 30,
             "gamma to be placed on the stopped satellite zone-b")
    settle(5)
    assert platform.cluster("gamma")["status"] == "PROVISIONING"  # type: ignore[index]
    zone_b.start()
    platform.wait_status("gamma", "RUNNING")
    assert len(_clusters_dirs(zone_b.local.data_dir)) == 1
    platform.delete("gamma")


def test_mothership_killed_mid_operation_finishes_the_job_after_restart(platform: Platform) -> None:
    local = platform.local
    db = os.environ.get("STREAMPLANE_TEST_MOTHERSHIP_DB")
    before = _clusters_dirs(platform.data_dir)
    platform.create("delta", type="dedicated", cku=1)
    pid = local.mothership_pid()
    assert pid
    wait_for(lambda: (platform.cluster("delta") or {}).get("status_reason", "").startswith("placed"), 30,
             "delta to be placed")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: local.mothership_pid() is None, 20, "the mothership to die")
    time.sleep(2)  # provisioning goes on in the satellite without the mothership
    local.start_mothership(db)
    platform.wait_status("delta", "RUNNING")
    _round_trip(platform, "delta")

    with platform.client() as c:
        assert c.delete("/v1/clusters/delta").status_code == 202
    pid = local.mothership_pid()
    assert pid
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: local.mothership_pid() is None, 20, "the mothership to die")
    local.start_mothership(db)
    platform.wait_gone("delta")
    wait_for(lambda: _clusters_dirs(platform.data_dir) == before, 60, "delta's data to be deleted")
    assert not any(_broker_pids(platform.data_dir, p) for p in _clusters_dirs(platform.data_dir) - before)
