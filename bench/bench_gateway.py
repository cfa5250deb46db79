"""Benchmark: the gateway vs straight to the brokers, same client (confluent-kafka), same run.

A satellite runs a one-broker shared cluster; the gateway runs as its own process
(``python -m streamplane.gateway``, keys from a JSON file) in front of it. A tenant is
provisioned as the mothership does (a SCRAM user with PREFIXED ACLs), and the same
client settings run against the gateway (tenant topic names) and against the broker
directly (the same principal, prefixed names), alternating, so both see the same load:

- produce and consume throughput (MB/s, msg/s) at 100 B, 1 KiB and 16 KiB messages,
- produce latency (p50/p99, librdkafka's own timing) at a fixed rate, acks=all,
- gateway RSS per idle authenticated connection and per tenant.

Prints a JSON summary and the markdown rows for docs/BENCHMARKS.md.
Usage: .venv/bin/python bench/bench_gateway.py [--rounds 3] [--idle 400] [--tenants 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from streamplane.gateway.auth import UpstreamCredentials
from streamplane.gateway.upstream import SaltedPasswords, UpstreamConnection, parse_address
from streamplane.kafka import ClusterAdmin
from streamplane.models.psc import PhysicalClusterSpec
from streamplane.tenancy import tenant_prefix
from streamplane.testing import satellite_cluster, scram_client_config, wait_for

SIZES = (100, 1024, 16 * 1024)
#: bytes produced per throughput run, per message size (fewer for tiny messages, which
#: are bound by the per-message cost, not bytes)
RUN_BYTES = {100: 30_000_000, 1024: 200_000_000, 16 * 1024: 300_000_000}
PARTITIONS = 3
LATENCY_RATE = 500.0
LATENCY_SIZE = 1024
LATENCY_WINDOW_S = 10.0
#: a tenant may hold this many connections (a basic cluster's limit is 100)
CONNECTIONS_PER_TENANT = 80
CLIENT_LOG = logging.getLogger("bench.rdkafka")


def shared_spec() -> PhysicalClusterSpec:
    return PhysicalClusterSpec.model_validate({
        "id": "bench-gateway",
        "brokers": [{"id": 1, "zone": "zone-a"}],
        "broker_configs": {"auto.create.topics.enable": "false"},
        "jvm": {"heap_mb": 512},
        "super_user": {"password": secrets.token_urlsafe(18)},
    })


# ---- tenants and the gateway process -------------------------------------------------------


@dataclass
class Tenant:
    cluster_id: str
    key: str
    secret: str

    @property
    def prefix(self) -> str:
        return tenant_prefix(self.cluster_id)

    def entry(self) -> dict[str, str]:
        return {"key": self.key, "secret": self.secret, "cluster_id": self.cluster_id}


def make_tenant(admin: ClusterAdmin) -> Tenant:
    run = uuid.uuid4().hex[:8]
    tenant = Tenant(f"lkc-{run}", f"key-{run}", secrets.token_urlsafe(18))
    admin.upsert_scram_user(tenant.key, tenant.secret)
    admin.grant_client_access(tenant.key, tenant.prefix)
    return tenant


def wait_login(bootstrap: str, tenant: Tenant) -> None:
    """New SCRAM credentials reach the broker through the metadata log."""
    def logs_in() -> bool:
        with ClusterAdmin(bootstrap, tenant.key, tenant.secret, timeout=3) as adm:
            adm.list_topics()
        return True

    wait_for(logs_in, 30, f"user {tenant.key} to log in")


@dataclass
class GatewayProcess:
    process: subprocess.Popen[bytes]
    bootstrap: str

    def rss(self) -> int:
        return int(psutil.Process(self.process.pid).memory_info().rss)


@contextmanager
def gateway_process(upstream: str, keys: Path, workdir: Path,
                    profile: Path | None = None) -> Iterator[GatewayProcess]:
    state = workdir / "gateway-state.json"
    log = (workdir / "gateway.log").open("wb")
    profiler = ["-m", "cProfile", "-o", str(profile)] if profile is not None else []
    process = subprocess.Popen(
        [sys.executable, *profiler, "-m", "streamplane.gateway", "--upstream", upstream,
         "--keys", str(keys), "--state-file", str(state), "--log-level", "WARNING"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: state.exists() or process.poll() is not None, 60, "the gateway to start")
        if process.poll() is not None:
            raise RuntimeError(f"the gateway exited with {process.returncode}; see {workdir / 'gateway.log'}")
        yield GatewayProcess(process, json.loads(state.read_text())["bootstrap"])
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


# ---- one path: the gateway or the broker ----------------------------------------------------


@dataclass
class Route:
    """How a client reaches the cluster, and what a topic is called on that path."""

    name: str
    config: dict[str, Any]
    topic_prefix: str

    def topic(self, name: str) -> str:
        return self.topic_prefix + name


def produce_run(path: Route, topic: str, size: int, count: int) -> dict[str, float]:
    producer = Producer({**path.config, "acks": "all", "linger.ms": 5,
                         "queue.buffering.max.messages": 1_000_000,
                         "queue.buffering.max.kbytes": 1_048_576, "logger": CLIENT_LOG})
    payload = os.urandom(size)
    failed: list[KafkaError] = []

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failed.append(err)

    producer.produce(path.topic(topic), payload, on_delivery=delivered)  # connect first
    producer.flush(30)
    start = time.monotonic()
    for _ in range(count):
        while True:
            try:
                producer.produce(path.topic(topic), payload, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    left = producer.flush(120)
    elapsed = time.monotonic() - start
    if left or failed:
        raise RuntimeError(f"{path.name}: {left} unacknowledged, {len(failed)} failed "
                           f"({failed[:1]})")
    return {"mb_s": count * size / elapsed / 1e6, "msg_s": count / elapsed}


def consume_run(path: Route, topic: str, size: int, count: int) -> dict[str, float]:
    consumer = Consumer({**path.config, "group.id": f"bench-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False, "fetch.max.bytes": 52_428_800,
                         "logger": CLIENT_LOG})
    consumer.assign([TopicPartition(path.topic(topic), p, 0) for p in range(PARTITIONS)])
    got = first = 0
    start = 0.0
    deadline = time.monotonic() + 180
    try:
        while got < count + 1 and time.monotonic() < deadline:
            batch = consumer.consume(1000, 1.0)
            got += sum(1 for msg in batch if msg.error() is None)
            if got and not start:
                # the clock starts at the first batch (connecting is not throughput), so
                # that batch does not count
                start, first = time.monotonic(), got
        elapsed = time.monotonic() - start
    finally:
        consumer.close()
    if got < count + 1 or got == first:
        raise RuntimeError(f"{path.name}: read {got} of {count + 1} messages")
    return {"mb_s": (got - first) * size / elapsed / 1e6, "msg_s": (got - first) / elapsed}


def latency_window(path: Route, topic: str, seconds: float) -> list[float]:
    """Produce LATENCY_RATE msg/s of LATENCY_SIZE bytes, acks=all, no batching delay;
    the latency of each message from produce() to its acknowledgement, in ms."""
    producer = Producer({**path.config, "acks": "all", "linger.ms": 0, "logger": CLIENT_LOG})
    payload = os.urandom(LATENCY_SIZE)
    latencies: list[float] = []
    failed: list[KafkaError] = []

    def delivered(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            failed.append(err)
        else:
            latencies.append(float(msg.latency() or 0.0) * 1000)

    producer.produce(path.topic(topic), payload, on_delivery=delivered)
    producer.flush(30)
    latencies.clear()
    interval = 1.0 / LATENCY_RATE
    start = time.monotonic()
    sent = 0
    while (now := time.monotonic()) - start < seconds:
        due = int((now - start) / interval) + 1
        while sent < due:
            producer.produce(path.topic(topic), payload, on_delivery=delivered)
            sent += 1
        producer.poll(min(interval, 0.001))
    producer.flush(30)
    if failed:
        raise RuntimeError(f"{path.name}: {len(failed)} failed sends ({failed[0]})")
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ---- memory --------------------------------------------------------------------------------


async def _open_idle(bootstrap: str, tenants: list[Tenant], per_tenant: int) -> list[UpstreamConnection]:
    """Log in ``per_tenant`` connections for each tenant and leave them idle."""
    salted = SaltedPasswords()
    address = parse_address(bootstrap)
    opened: list[UpstreamConnection] = []
    for tenant in tenants:
        credentials = UpstreamCredentials(username=tenant.key, password=tenant.secret)
        for _ in range(per_tenant):
            opened.append(await UpstreamConnection.login(address, credentials, timeout=30,
                                                         salted=salted))
    return opened


def settled_rss(gateway: GatewayProcess) -> int:
    """RSS once it stops moving (the allocator settles after a burst)."""
    last = gateway.rss()
    for _ in range(10):
        time.sleep(0.5)
        now = gateway.rss()
        if abs(now - last) < 64 * 1024:
            return now
        last = now
    return last


def memory(gateway: GatewayProcess, idle_tenants: list[Tenant], idle: int,
           spread_tenants: list[Tenant]) -> dict[str, float]:
    loop = asyncio.new_event_loop()
    try:
        # warm up: the first login loads code and caches that every later one shares
        warm = loop.run_until_complete(_open_idle(gateway.bootstrap, idle_tenants[:1], 2))
        base = settled_rss(gateway)
        per = -(-idle // len(idle_tenants))
        conns = loop.run_until_complete(_open_idle(gateway.bootstrap, idle_tenants, per))
        with_idle = settled_rss(gateway)
        per_connection = (with_idle - base) / len(conns)
        # one connection for each of many more tenants: what a tenant adds beyond that
        spread = loop.run_until_complete(_open_idle(gateway.bootstrap, spread_tenants, 1))
        with_tenants = settled_rss(gateway)
        per_tenant = (with_tenants - with_idle) / len(spread) - per_connection
        for conn in [*warm, *conns, *spread]:
            loop.run_until_complete(conn.close())
        return {"connections": len(conns), "tenants": len(spread),
                "rss_before_mib": base / 2**20, "rss_idle_mib": with_idle / 2**20,
                "per_connection_kib": per_connection / 1024,
                "per_tenant_kib": per_tenant / 1024}
    finally:
        loop.close()


# ---- the run -------------------------------------------------------------------------------


def throughput(paths: list[Route], admin: ClusterAdmin, tenant: Tenant, rounds: int,
               sizes: list[int]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for size in sizes:
        count = RUN_BYTES[size] // size
        per: dict[str, dict[str, list[float]]] = {p.name: {"produce_mb_s": [], "produce_msg_s": [],
                                                            "consume_mb_s": [], "consume_msg_s": []}
                                                  for p in paths}
        for r in range(rounds):
            # alternate which path goes first, so neither always runs on a warmer machine
            for path in paths if r % 2 == 0 else paths[::-1]:
                topic = f"tp-{size}-{path.name}-{r}"
                admin.create_topic(tenant.prefix + topic, PARTITIONS, 1)
                produced = produce_run(path, topic, size, count)
                consumed = consume_run(path, topic, size, count)
                admin.delete_topic(tenant.prefix + topic)
                for kind, figures in (("produce", produced), ("consume", consumed)):
                    per[path.name][f"{kind}_mb_s"].append(figures["mb_s"])
                    per[path.name][f"{kind}_msg_s"].append(figures["msg_s"])
                print(f"{size} B, {path.name}, round {r + 1}: produce {produced['mb_s']:.1f} MB/s, "
                      f"consume {consumed['mb_s']:.1f} MB/s; load {os.getloadavg()[0]:.1f}",
                      flush=True)
        results[str(size)] = {name: {k: round(statistics.median(v), 1) for k, v in figures.items()}
                              for name, figures in per.items()}
    return results


def latency(paths: list[Route], admin: ClusterAdmin, tenant: Tenant, rounds: int) -> dict[str, Any]:
    admin.create_topic(tenant.prefix + "latency", PARTITIONS, 1)
    samples: dict[str, list[float]] = {p.name: [] for p in paths}
    for r in range(rounds):
        for path in paths if r % 2 == 0 else paths[::-1]:
            window = latency_window(path, "latency", LATENCY_WINDOW_S)
            samples[path.name] += window
            print(f"latency, {path.name}, window {r + 1}: p50 {percentile(window, 0.5):.2f} ms, "
                  f"p99 {percentile(window, 0.99):.2f} ms; load {os.getloadavg()[0]:.1f}", flush=True)
    return {name: {"p50_ms": round(percentile(v, 0.5), 2), "p99_ms": round(percentile(v, 0.99), 2),
                   "messages": len(v)} for name, v in samples.items()}


def markdown(results: dict[str, Any]) -> str:
    date = time.strftime("%Y-%m-%d")
    load = results["load_average"]
    rows = ["| date | size | path | produce MB/s | produce msg/s | consume MB/s | consume msg/s | "
            "gateway/direct (produce, consume) | load average |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for size, by_path in results["throughput"].items():
        d, g = by_path["direct"], by_path["gateway"]
        ratio = (f"{g['produce_mb_s'] / d['produce_mb_s']:.2f}, "
                 f"{g['consume_mb_s'] / d['consume_mb_s']:.2f}")
        for name, f in (("direct", d), ("gateway", g)):
            rows.append(f"| {date} | {size} B | {name} | {f['produce_mb_s']} | {f['produce_msg_s']:.0f} | "
                        f"{f['consume_mb_s']} | {f['consume_msg_s']:.0f} | "
                        f"{ratio if name == 'gateway' else ''} | {load} |")
    lat = results["latency"]
    rows += ["", "| date | path | p50 | p99 | messages | load average |", "| --- | --- | --- | --- | --- | --- |"]
    for name in ("direct", "gateway"):
        rows.append(f"| {date} | {name} | {lat[name]['p50_ms']} ms | {lat[name]['p99_ms']} ms | "
                    f"{lat[name]['messages']} | {load} |")
    mem = results["memory"]
    rows += ["", f"Gateway RSS: {mem['per_connection_kib']:.0f} KiB per idle connection "
             f"({mem['connections']} connections), {mem['per_tenant_kib']:.0f} KiB per tenant "
             f"beyond its connection ({mem['tenants']} tenants)."]
    return "\n".join(rows)


def main() -> None:
    # SIGTERM unwinds like Ctrl-C, so the finally blocks stop every process started here
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per figure")
    parser.add_argument("--idle", type=int, default=400, help="idle connections to open")
    parser.add_argument("--tenants", type=int, default=40, help="tenants for the per-tenant figure")
    parser.add_argument("--skip", nargs="*", default=[], choices=["throughput", "latency", "memory"])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), choices=SIZES)
    parser.add_argument("--profile", type=Path, help="run the gateway under cProfile, stats to this file")
    args = parser.parse_args()
    loads = [os.getloadavg()[0]]
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                               "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        workdir = Path(tmp)
        (workdir / "sat").mkdir()
        psc = shared_spec()
        with satellite_cluster(workdir / "sat", psc, 240) as (_local, status):
            bootstrap = status.bootstrap or ""
            su = psc.super_user
            with ClusterAdmin(bootstrap, su.name, su.password.get_secret_value(), timeout=30) as admin:
                tenant = make_tenant(admin)
                idle_tenants = [make_tenant(admin) for _ in range(-(-args.idle // CONNECTIONS_PER_TENANT))]
                spread = [make_tenant(admin) for _ in range(args.tenants)]
                everyone = [tenant, *idle_tenants, *spread]
                keys = workdir / "keys.json"
                keys.write_text(json.dumps({"keys": [t.entry() for t in everyone]}))
                for t in everyone:
                    wait_login(bootstrap, t)
                with gateway_process(bootstrap, keys, workdir, args.profile) as gateway:
                    paths = [
                        Route("direct", scram_client_config(bootstrap, tenant.key, tenant.secret),
                              tenant.prefix),
                        Route("gateway", scram_client_config(gateway.bootstrap, tenant.key,
                                                             tenant.secret), ""),
                    ]
                    if "throughput" not in args.skip:
                        results["throughput"] = throughput(paths, admin, tenant, args.rounds, args.sizes)
                        loads.append(os.getloadavg()[0])
                    if "latency" not in args.skip:
                        results["latency"] = latency(paths, admin, tenant, args.rounds)
                        loads.append(os.getloadavg()[0])
                    if "memory" not in args.skip:
                        results["memory"] = memory(gateway, idle_tenants, args.idle, spread)
                        loads.append(os.getloadavg()[0])
    results["load_average"] = f"{min(loads):.0f} to {max(loads):.0f}"
    print(json.dumps(results, indent=1))
    if all(k in results for k in ("throughput", "latency", "memory")):
        print(markdown(results))


if __name__ == "__main__":
    main()
