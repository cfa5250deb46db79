"""Benchmark: clusters over three zones (``streamplane up --zones 3``, satellites in network
namespaces).

1. Provisioning, single-zone vs multi-zone: dedicated 1-CKU cluster, POST → RUNNING → first
   acknowledged produce (median of ``--runs``).
2. Zone loss: a multi-zone cluster under a steady idempotent ``acks=all`` load; zone c (its
   satellite and every Kafka process it runs) is killed -9, then started again. Reports the
   longest gap between acknowledgements and the p99 produce latency before, during (zone
   gone) and after (zone back and the cluster healthy).

Needs root (network namespaces). Usage: .venv/bin/python bench/bench_zones.py [--runs 2]
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
from confluent_kafka import Producer

from streamplane.mothership.server import MothershipLayout
from streamplane.testing import scram_client_config, wait_for

WINDOW_S = 30.0
RATE_PER_S = 300


def streamplane(*args: str) -> str:
    env = {**os.environ, "STREAMPLANE_BROKER_HEAP_MB": "256"}
    return subprocess.run([sys.executable, "-m", "streamplane", *args], check=True, env=env,
                          capture_output=True, text=True, timeout=900).stdout


def create(api: httpx.Client, name: str, availability: str) -> tuple[dict[str, Any], float]:
    start = time.monotonic()
    cluster = api.post("/v1/clusters", json={"name": name, "type": "dedicated", "cku": 1,
                                             "availability": availability}).json()["cluster"]

    def running() -> dict[str, Any] | None:
        c: dict[str, Any] = api.get(f"/v1/clusters/{cluster['id']}").json()
        return c if c["status"] == "RUNNING" else None

    return wait_for(running, 300, f"{name} RUNNING", interval=0.05), start


def client(api: httpx.Client, c: dict[str, Any], topic: str, partitions: int) -> dict[str, Any]:
    key = api.post(f"/v1/clusters/{c['id']}/api-keys").json()["api_key"]
    api.post(f"/v1/clusters/{c['id']}/topics", json={"name": topic, "partitions": partitions})
    return {**scram_client_config(c["bootstrap"], key["key"], key["secret"]),
            "logger": logging.getLogger("bench.rdkafka")}


def provision(api: httpx.Client, availability: str) -> dict[str, float]:
    c, start = create(api, f"p-{uuid.uuid4().hex[:4]}", availability)
    t_running = time.monotonic() - start
    producer = Producer({**client(api, c, "first", 1), "acks": "all"})
    acked: list[float] = []
    producer.produce("first", b"hello", on_delivery=lambda err, _: acked.append(time.monotonic()) if not err else None)
    producer.flush(60)
    del producer
    assert acked, "the first message was not acknowledged"
    api.delete(f"/v1/clusters/{c['id']}")
    wait_for(lambda: api.get(f"/v1/clusters/{c['id']}").status_code == 404, 180, "deleted")
    return {"running_s": t_running, "first_ack_s": acked[0] - start}


class Load:
    """Idempotent acks=all produce at a steady rate; (ack time, latency) of every message."""

    def __init__(self, config: dict[str, Any], topic: str) -> None:
        self.config, self.topic = config, topic
        self.acks: list[tuple[float, float]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        p = Producer({**self.config, "acks": "all", "enable.idempotence": True, "linger.ms": 5,
                      "delivery.timeout.ms": 120000})

        def done(err: Any, msg: Any) -> None:
            if err is not None:
                self.errors.append(str(err))
            else:
                self.acks.append((time.monotonic(), msg.latency() or 0.0))

        next_at = time.monotonic()
        i = 0
        while not self._stop.is_set():
            p.produce(self.topic, key=str(i % 64).encode(), value=str(i).encode(), on_delivery=done)
            i += 1
            p.poll(0)
            next_at += 1 / RATE_PER_S
            time.sleep(max(0.0, next_at - time.monotonic()))
        p.flush(120)

    def start(self) -> Load:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(180)

    def p99_ms(self, start: float, end: float) -> float:
        lat = sorted(lat for t, lat in self.acks if start <= t < end)
        return round(1000 * lat[int(0.99 * (len(lat) - 1))], 1) if lat else float("nan")

    def longest_gap_s(self) -> float:
        times = [t for t, _ in self.acks]
        return round(max(b - a for a, b in itertools.pairwise(times)), 2)


def zone_loss(api: httpx.Client, data_dir: Path) -> dict[str, Any]:
    c, _ = create(api, "zl", "multi-zone")
    load = Load(client(api, c, "load", 6), "load").start()
    try:
        time.sleep(WINDOW_S)
        t_kill = time.monotonic()
        status = json.loads(streamplane("status", "-o", "json", "--data-dir", str(data_dir)))
        lost = next(s for s in status["satellites"] if s["zone"] == "zone-c")
        victims = [lost["pid"]] + [p.pid for p in psutil.process_iter(["cmdline"])
                                   if f"/satellites/{lost['name']}/clusters/" in " ".join(p.info["cmdline"] or [])]
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        time.sleep(WINDOW_S)
        t_back = time.monotonic()
        streamplane("up", "--detach", "--data-dir", str(data_dir))

        def healthy() -> bool:
            doc = json.loads(streamplane("status", "-o", "json", "--data-dir", str(data_dir)))
            pc = [x for x in doc["clusters"] if x["id"] != "system"]
            return bool(pc) and pc[0]["status"] == "HEALTHY" and pc[0]["under_replicated_partitions"] == 0

        wait_for(healthy, 300, "the cluster healthy with zone c back", interval=2)
        t_healthy = time.monotonic()
        time.sleep(WINDOW_S)
        t_end = time.monotonic()
    finally:
        load.stop()
    return {"acknowledged": len(load.acks), "errors": len(load.errors),
            "longest_gap_s": load.longest_gap_s(),
            "p99_ms_before": load.p99_ms(t_kill - WINDOW_S, t_kill),
            "p99_ms_zone_gone": load.p99_ms(t_kill, t_back),
            "p99_ms_after": load.p99_ms(t_healthy, t_end),
            "zone_back_to_healthy_s": round(t_healthy - t_back, 1)}


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-zones-") as tmp:
        data_dir = Path(tmp)
        try:
            streamplane("up", "--zones", "3", "--detach", "--data-dir", str(data_dir))
            layout = MothershipLayout(data_dir)
            url = json.loads(layout.endpoint_file.read_text())["url"]
            token = layout.token_file.read_text().strip()
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as api:
                result: dict[str, Any] = {}
                for availability in ("single-zone", "multi-zone"):
                    runs = [provision(api, availability) for _ in range(args.runs)]
                    result[availability] = {k: round(statistics.median(r[k] for r in runs), 2)
                                            for k in runs[0]}
                result["zone_loss"] = zone_loss(api, data_dir)
        finally:
            subprocess.run([sys.executable, "-m", "streamplane", "down", "--data-dir", str(data_dir)],
                           capture_output=True, timeout=300)
    print(json.dumps({**result, "runs": args.runs}, indent=1))


if __name__ == "__main__":
    main()
