"""The embedded default through its CLI: up, status, down, and refusing bad specs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

STREAMPLANE = [sys.executable, "-m", "streamplane"]


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STREAMPLANE, *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


def test_apply_refuses_an_invalid_spec_and_leaves_nothing_on_disk(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"id": "demo", "brokers": [{"id": 1}, {"id": 1}],
                               "kafka_version": "1.0.0",
                               "super_user": {"password": "long-enough-secret"}}))
    res = run("satellite", "apply", str(bad), "--data-dir", str(data_dir))
    assert res.returncode != 0
    assert "broker ids must be unique; repeated: [1]" in res.stderr
    assert "Kafka version '1.0.0' is not supported" in res.stderr
    assert not data_dir.exists()

    not_json = tmp_path / "garbage.json"
    not_json.write_text("{not json")
    res = run("satellite", "apply", str(not_json), "--data-dir", str(data_dir))
    assert res.returncode != 0 and "is not valid JSON" in res.stderr
    assert not data_dir.exists()


@pytest.mark.kafka
def test_up_detach_status_down_leaves_no_process(tmp_path: Path) -> None:
    data_dir = tmp_path / "sp"
    try:
        res = run("up", "--detach", "--data-dir", str(data_dir))
        assert res.returncode == 0, res.stderr
        assert "system cluster" in res.stdout and "HEALTHY" in res.stdout

        res = run("status", "--data-dir", str(data_dir), "-o", "json")
        assert res.returncode == 0, res.stderr
        doc = json.loads(res.stdout)
        assert doc["satellite"]["running"] is True
        [system] = doc["clusters"]
        assert system["id"] == "system" and system["status"] == "HEALTHY"
        [broker] = system["brokers"]
        assert broker["state"] == "RUNNING" and broker["host"] == "127.0.0.1"
        pids = [doc["satellite"]["pid"], broker["pid"]]
        assert all(psutil.pid_exists(p) for p in pids)
        assert isinstance(broker["port"], int)

        # a second `up` finds everything running and starts nothing new
        res = run("up", "--detach", "--data-dir", str(data_dir))
        assert res.returncode == 0, res.stderr
        again = json.loads(run("status", "--data-dir", str(data_dir), "-o", "json").stdout)
        assert again["satellite"]["pid"] == pids[0]
        assert again["clusters"][0]["brokers"][0]["pid"] == pids[1]
    finally:
        res = run("down", "--data-dir", str(data_dir))
    assert res.returncode == 0, res.stderr
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids)
    leftovers = [p for p in psutil.process_iter(["cmdline"])
                 if any(str(data_dir) in part for part in (p.info["cmdline"] or []))]
    assert leftovers == []
    doc = json.loads(run("status", "--data-dir", str(data_dir), "-o", "json").stdout)
    assert doc["satellite"]["running"] is False
    assert doc["clusters"][0]["status"] == "STOPPED"
