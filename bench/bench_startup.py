"""Benchmark: PSC submitted → cluster healthy, for 1 and 3 brokers (median of 5), and broker RSS.

Runs a real satellite daemon in a scratch data dir; prints a JSON summary and the markdown
row for docs/BENCHMARKS.md.  Usage: .venv/bin/python bench/bench_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

from streamplane.cli.local import LocalDeployment
from streamplane.models.psc import PhysicalClusterSpec
from streamplane.models.status import ClusterState
from streamplane.testing import wait_for


def spec(cluster_id: str, brokers: int) -> PhysicalClusterSpec:
    return PhysicalClusterSpec.model_validate({
        "id": cluster_id,
        "controllers": {"mode": "combined", "count": 3 if brokers >= 3 else 1},
        "brokers": [{"id": i + 1, "zone": f"z{i}"} for i in range(brokers)],
        "jvm": {"heap_mb": 256},
        "super_user": {"password": secrets.token_urlsafe(16)},
    })


def one_run(local: LocalDeployment, cluster_id: str, brokers: int) -> tuple[float, list[int]]:
    psc = spec(cluster_id, brokers)
    start = time.monotonic()
    local.source.submit(psc)

    def healthy() -> bool:
        st = local.status(cluster_id)
        return st is not None and st.status == ClusterState.HEALTHY and st.observed_generation == 1

    wait_for(healthy, 180, f"{cluster_id} healthy", interval=0.05)
    elapsed = time.monotonic() - start
    st = local.status(cluster_id)
    assert st is not None
    rss = [psutil.Process(b.pid).memory_info().rss for b in st.brokers if b.pid]
    local.source.withdraw(cluster_id)
    wait_for(lambda: local.status(cluster_id) is None, 120, f"{cluster_id} deleted")
    return elapsed, rss


def main() -> None:
    # SIGTERM unwinds like Ctrl-C, so the finally blocks stop every process started here
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        local = LocalDeployment(Path(tmp))
        local.start_satellite()
        try:
            for brokers in (1, 3):
                times, rss = [], []
                for i in range(args.runs):
                    t, r = one_run(local, f"bench-{brokers}-{i}", brokers)
                    times.append(t)
                    rss += r
                    print(f"{brokers} broker(s), run {i + 1}: healthy after {t:.1f} s", flush=True)
                results[f"{brokers}_brokers"] = {
                    "median_s": round(statistics.median(times), 2),
                    "min_s": round(min(times), 2), "max_s": round(max(times), 2),
                    "broker_rss_mib_median": round(statistics.median(rss) / 2**20),
                }
        finally:
            local.down()
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
