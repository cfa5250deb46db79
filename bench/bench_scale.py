"""Benchmark: scale a dedicated cluster out with data on disk.

Starts its own platform (``streamplane up``), creates a dedicated 1-CKU cluster (3 brokers),
fills one topic with ``--gib`` GiB (replication factor 3), then scales to 2 CKU (4 brokers)
while a producer writes 1 KiB messages at a fixed rate with acks=all. Reports:

* time from the scale request until the operation succeeded (new broker up and balanced);
* bytes the balancer copied, against the minimum: the new broker's even share of the
  replicated data (total replica bytes / brokers after);
* producer p50/p99 latency in the 30 s before the scale and during it.

Usage: .venv/bin/python bench/bench_scale.py [--gib 2] [--throttle-mib 50]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Producer

from streamplane.mothership.server import MothershipLayout
from streamplane.testing import fill_topic, scram_client_config, wait_for

TOPIC, PARTITIONS = "bulk", 24
RATE_PER_S = 200


def streamplane(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "-m", "streamplane", *args], check=True, env={**os.environ, **env},
                   capture_output=True, timeout=900)


class LatencyProbe:
    """1 KiB messages at a fixed rate; each ack's latency, stamped with its send time."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.samples: list[tuple[float, float]] = []
        self.errors = 0
        self._stop = threading.Event()
        self._producer = Producer({**config, "acks": "all", "enable.idempotence": True, "linger.ms": 0})
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> LatencyProbe:
        self._thread.start()
        return self

    def _run(self) -> None:
        payload = os.urandom(1024)
        next_at = time.monotonic()
        while not self._stop.is_set():
            sent = time.monotonic()

            def done(err: Any, _msg: Any, sent: float = sent) -> None:
                if err is not None:
                    self.errors += 1
                else:
                    self.samples.append((sent, time.monotonic() - sent))

            self._producer.produce("probe", payload, on_delivery=done)
            self._producer.poll(0)
            next_at += 1 / RATE_PER_S
            time.sleep(max(0.0, next_at - time.monotonic()))
        self._producer.flush(60)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(90)

    def between(self, start: float, end: float) -> dict[str, float]:
        lat = sorted(lat for at, lat in self.samples if start <= at < end)
        if not lat:
            return {}
        return {"p50_ms": round(1000 * statistics.median(lat), 1),
                "p99_ms": round(1000 * lat[int(0.99 * (len(lat) - 1))], 1), "messages": len(lat)}


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=2.0)
    parser.add_argument("--throttle-mib", type=int, default=50, help="replication throttle per broker")
    args = parser.parse_args()
    env = {"STREAMPLANE_BROKER_HEAP_MB": "384",
           "STREAMPLANE_REPLICATION_THROTTLE": str(args.throttle_mib * 1024 * 1024)}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        data_dir = Path(tmp)
        streamplane(env, "up", "--detach", "--data-dir", str(data_dir))
        try:
            layout = MothershipLayout(data_dir)
            url = json.loads(layout.endpoint_file.read_text())["url"]
            token = layout.token_file.read_text().strip()
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as api:
                result = run(api, args)
        finally:
            streamplane(env, "down", "--data-dir", str(data_dir))
    print(json.dumps(result, indent=1))


def run(api: httpx.Client, args: argparse.Namespace) -> dict[str, Any]:
    cid = api.post("/v1/clusters", json={"name": "big", "type": "dedicated", "cku": 1}).json()["cluster"]["id"]

    def running() -> dict[str, Any] | None:
        c: dict[str, Any] = api.get(f"/v1/clusters/{cid}").json()
        return c if c["status"] == "RUNNING" else None

    c = wait_for(running, 300, "the cluster to run", interval=0.5)
    key = api.post(f"/v1/clusters/{cid}/api-keys").json()["api_key"]
    for name, partitions in ((TOPIC, PARTITIONS), ("probe", 6)):
        r = api.post(f"/v1/clusters/{cid}/topics", json={"name": name, "partitions": partitions})
        assert r.status_code == 202, r.text
    config = scram_client_config(c["bootstrap"], key["key"], key["secret"])
    fill_rate = fill_topic(config, TOPIC, int(args.gib * 2**30), keys=PARTITIONS, blob_bytes=64 * 1024)
    probe = LatencyProbe(config).start()
    time.sleep(30)
    before_end = time.monotonic()
    start = time.monotonic()
    r = api.patch(f"/v1/clusters/{cid}", json={"cku": 2})
    assert r.status_code == 202, r.text
    op_id = r.json()["operation"]["id"]

    def done() -> bool:
        op = api.get(f"/v1/operations/{op_id}").json()
        assert op["status"] != "FAILED", op
        return bool(op["status"] == "SUCCEEDED")

    wait_for(done, 3600, "the scale-out to finish", interval=1)
    took = time.monotonic() - start
    probe.stop()
    balance = api.get(f"/v1/clusters/{cid}/balance").json()
    load = api.get(f"/v1/clusters/{cid}/load").json()
    moved = (balance.get("last_execution") or {}).get("bytes_moved", 0)
    replica_bytes = sum(b["disk_bytes"] for b in load["brokers"])
    minimum = replica_bytes / len(load["brokers"])
    return {
        "data_gib": args.gib, "fill_mib_per_s": round(fill_rate / 2**20, 1),
        "throttle_mib_per_s": args.throttle_mib,
        "scale_1_to_2_cku_s": round(took, 1),
        "bytes_moved_gib": round(moved / 2**30, 3), "minimum_gib": round(minimum / 2**30, 3),
        "moved_over_minimum": round(moved / minimum, 2) if minimum else None,
        "latency_before": probe.between(before_end - 30, before_end),
        "latency_during": probe.between(start, start + took),
        "producer_errors": probe.errors,
        "imbalance_after": {k: round(v, 3) for k, v in load["imbalance"].items()},
        "loadavg": os.getloadavg(),
    }


if __name__ == "__main__":
    main()
