"""Benchmark: API call → RUNNING → first acknowledged produce.

For a dedicated 1-CKU cluster (new physical cluster, 3 brokers) and for a basic cluster on
an already running shared physical cluster. Starts its own platform with ``streamplane up``
in a scratch data dir. Usage: .venv/bin/python bench/bench_provision.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Producer

from streamplane.mothership.server import MothershipLayout
from streamplane.testing import scram_client_config, wait_for


def streamplane(*args: str) -> None:
    env = {**os.environ, "STREAMPLANE_BROKER_HEAP_MB": "256"}
    subprocess.run([sys.executable, "-m", "streamplane", *args], check=True, env=env,
                   capture_output=True, timeout=600)


def provision(api: httpx.Client, body: dict[str, Any]) -> dict[str, float]:
    start = time.monotonic()
    cluster = api.post("/v1/clusters", json=body).json()["cluster"]

    def running() -> dict[str, Any] | None:
        c: dict[str, Any] = api.get(f"/v1/clusters/{cluster['id']}").json()
        return c if c["status"] == "RUNNING" else None

    c = wait_for(running, 180, f"{body['name']} RUNNING", interval=0.05)
    t_running = time.monotonic() - start
    key = api.post(f"/v1/clusters/{cluster['id']}/api-keys").json()["api_key"]
    api.post(f"/v1/clusters/{cluster['id']}/topics", json={"name": "first", "partitions": 1})
    # without the gateway a basic cluster's topics carry its prefix on the shared Kafka cluster
    topic = "first" if body["type"] == "dedicated" else f"{cluster['id']}_first"
    producer = Producer({**scram_client_config(c["bootstrap"], key["key"], key["secret"]), "acks": "all",
                         "logger": logging.getLogger("bench.rdkafka")})
    acked: list[float] = []
    producer.produce(topic, b"hello", on_delivery=lambda err, _: acked.append(time.monotonic()) if not err else None)
    producer.flush(60)
    del producer  # closes its connections before the cluster goes away
    assert acked, "the first message was not acknowledged"
    result = {"running_s": t_running, "first_ack_s": acked[0] - start}
    api.delete(f"/v1/clusters/{cluster['id']}")
    wait_for(lambda: api.get(f"/v1/clusters/{cluster['id']}").status_code == 404, 120, "deleted")
    return result


def summarize(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}


def main() -> None:
    # SIGTERM unwinds like Ctrl-C, so the finally blocks stop every process started here
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-provision-") as tmp:
        data_dir = Path(tmp)
        streamplane("up", "--detach", "--data-dir", str(data_dir))
        try:
            layout = MothershipLayout(data_dir)
            url = json.loads(layout.endpoint_file.read_text())["url"]
            token = layout.token_file.read_text().strip()
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as api:
                dedicated = [provision(api, {"name": f"ded-{uuid.uuid4().hex[:4]}", "type": "dedicated",
                                             "cku": 1}) for _ in range(args.runs)]
                # the first basic cluster brings up the shared physical cluster; keep it
                warm = api.post("/v1/clusters", json={"name": "warm", "type": "basic"}).json()["cluster"]
                wait_for(lambda: api.get(f"/v1/clusters/{warm['id']}").json()["status"] == "RUNNING",
                         180, "the shared cluster")
                basic = [provision(api, {"name": f"basic-{uuid.uuid4().hex[:4]}", "type": "basic"})
                         for _ in range(args.runs)]
        finally:
            streamplane("down", "--data-dir", str(data_dir))
    print(json.dumps({"dedicated_1_cku": summarize(dedicated), "basic_on_shared": summarize(basic),
                      "runs": args.runs}, indent=1))


if __name__ == "__main__":
    main()
