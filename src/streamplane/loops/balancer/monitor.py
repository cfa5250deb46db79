"""The monitor: read a running cluster into a ``ClusterModel``.

Placement comes from Kafka's admin protocol (metadata for replicas, leaders and ISR;
DescribeLogDirs for the bytes each replica holds; DescribeCluster for racks and fenced
brokers), through kafka-python's admin client, the one of our two clients that has
DescribeLogDirs. Traffic comes from each broker's JMX exporter:
``kafka_server_brokertopicmetrics_count{name="BytesInPerSec"|"BytesOutPerSec",topic=...}``
are per-topic counters of what a broker serves as leader, so two scrapes ``rate_window_s``
apart give rates. A topic's rate on a broker is split over the partitions that broker
leads in proportion to how much each partition's log grew in the same window
(``kafka_log_log_value{name="Size"}``), or evenly when none grew. With a window of 0 the
exporter's one-minute moving rates are used instead.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from streamplane.kafka.settings import ClientSettings, kafka_python_admin
from streamplane.loops.balancer.model import Broker, BrokerCapacity, BrokerState, ClusterModel, Partition
from streamplane.metrics.scrape import Sample, scrape
from streamplane.models.status import ClusterStatus
from streamplane.tenancy import DEFAULT_CELL

RATE_WINDOW_S = 5.0
ADMIN_TIMEOUT_S = 15.0
TOPIC_COUNTER = "kafka_server_brokertopicmetrics_count"
TOPIC_RATE = "kafka_server_brokertopicmetrics_oneminuterate"
LOG_METRIC = "kafka_log_log_value"
BYTES_IN, BYTES_OUT = "BytesInPerSec", "BytesOutPerSec"
UNKNOWN_ZONE = "unknown"


@dataclass
class _Snapshot:
    """What the admin protocol says, in plain types."""

    #: broker id -> (rack, fenced)
    brokers: dict[int, tuple[str | None, bool]] = field(default_factory=dict)
    #: (topic, partition) -> (replicas, leader, isr)
    partitions: dict[tuple[str, int], tuple[tuple[int, ...], int | None, tuple[int, ...]]] = field(
        default_factory=dict)
    internal: set[str] = field(default_factory=set)
    #: (topic, partition, broker) -> bytes of that replica
    sizes: dict[tuple[str, int, int], int] = field(default_factory=dict)
    #: broker -> total bytes of its log directories' file systems
    disk_bytes: dict[int, int] = field(default_factory=dict)


@dataclass
class _Scrape:
    at: float
    samples: list[Sample] | None
    error: str | None = None


async def build_model(
    bootstrap: str,
    username: str,
    password: str,
    metrics_endpoints: Mapping[int, tuple[str, int]],
    *,
    cluster_id: str = "",
    broker_racks: Mapping[int, str] | None = None,
    broker_cells: Mapping[int, str] | None = None,
    broker_states: Mapping[int, BrokerState] | None = None,
    tenant_cells: Mapping[str, str] | None = None,
    untenanted_cell: str | None = None,
    capacities: Mapping[int, BrokerCapacity] | None = None,
    rate_window_s: float = RATE_WINDOW_S,
    mechanism: str = "SCRAM-SHA-512",
    include_internal: bool = True,
) -> ClusterModel:
    """A load model of the cluster at ``bootstrap``, read as ``username``.

    ``broker_racks`` overrides the racks brokers report; cells are not known to Kafka and
    default to ``cell-0``; a broker that is fenced or not registered is ``dead`` whatever
    ``broker_states`` says. Disk capacity defaults to the size of each broker's log-dir
    file systems; network capacity is unknown unless ``capacities`` gives it.
    """
    first = await _scrape_all(metrics_endpoints)
    snapshot_task = asyncio.create_task(
        asyncio.to_thread(_admin_snapshot, bootstrap, username, password, mechanism))
    if rate_window_s > 0:
        await asyncio.sleep(rate_window_s)
        second = await _scrape_all(metrics_endpoints)
    else:
        second, first = first, {}
    snap = await snapshot_task

    notes: list[str] = []
    brokers = _brokers(snap, metrics_endpoints, broker_racks or {}, broker_cells or {},
                       broker_states or {}, capacities or {})
    rates = _topic_rates(first, second, notes)
    growth = _log_growth(first, second)
    partitions = []
    for (topic, index), (replicas, leader, isr) in sorted(snap.partitions.items()):
        if not replicas or (topic in snap.internal and not include_internal):
            continue
        sizes = [snap.sizes.get((topic, index, b)) for b in replicas]
        leader_size = snap.sizes.get((topic, index, leader)) if leader is not None else None
        size = leader_size if leader_size is not None else max((s for s in sizes if s is not None), default=0)
        partitions.append(Partition(topic=topic, partition=index, replicas=replicas, leader=leader,
                                    isr=isr, size_bytes=size))
    partitions = _attribute_rates(partitions, rates, growth)
    for b, scr in sorted(second.items()):
        if scr.error:
            notes.append(f"no metrics from broker {b}: {scr.error}")
    return ClusterModel(cluster_id=cluster_id, brokers=brokers, partitions=partitions,
                        tenant_cells=dict(tenant_cells or {}), untenanted_cell=untenanted_cell,
                        notes=notes)


async def build_model_from_status(status: ClusterStatus, username: str, password: str,
                                  **kwargs: Any) -> ClusterModel:
    """``build_model`` for a cluster a satellite runs: endpoints, zones and cells from its
    reported status."""
    if not status.bootstrap:
        raise ValueError(f"cluster {status.id} reports no bootstrap address yet; is it running?")
    endpoints = {b.id: (b.host, b.metrics_port) for b in status.brokers}
    racks = {b.id: b.zone for b in status.brokers if b.zone}
    cells = {b.id: b.cell for b in status.brokers if b.cell}
    kwargs.setdefault("cluster_id", status.id)
    return await build_model(status.bootstrap, username, password, endpoints,
                             broker_racks=kwargs.pop("broker_racks", racks),
                             broker_cells=kwargs.pop("broker_cells", cells), **kwargs)


# ---- reading -----------------------------------------------------------------------------


async def _scrape_all(endpoints: Mapping[int, tuple[str, int]]) -> dict[int, _Scrape]:
    async def one(host: str, port: int) -> _Scrape:
        try:
            samples = await scrape(host, port)
        except (OSError, TimeoutError) as exc:
            return _Scrape(time.monotonic(), None, f"{type(exc).__name__}: {exc}".rstrip(": "))
        return _Scrape(time.monotonic(), samples)

    ids = list(endpoints)
    results = await asyncio.gather(*(one(*endpoints[b]) for b in ids))
    return dict(zip(ids, results, strict=True))


def _admin_snapshot(bootstrap: str, username: str, password: str, mechanism: str) -> _Snapshot:
    admin = kafka_python_admin(ClientSettings(bootstrap, username, password, mechanism), ADMIN_TIMEOUT_S,
                               "streamplane-balancer-monitor", bootstrap_timeout=False)
    try:
        snap = _Snapshot()
        for b in admin.describe_cluster()["brokers"]:
            snap.brokers[int(b["broker_id"])] = (b.get("rack"), bool(b.get("is_fenced", False)))
        for t in admin.describe_topics():
            if t.get("error_code", 0) != 0:
                continue
            if t.get("is_internal"):
                snap.internal.add(t["name"])
            for p in t["partitions"]:
                leader = int(p["leader_id"])
                snap.partitions[(t["name"], int(p["partition_index"]))] = (
                    tuple(int(r) for r in p["replica_nodes"]), leader if leader >= 0 else None,
                    tuple(int(r) for r in p["isr_nodes"]))
        live = [b for b, (_, fenced) in snap.brokers.items() if not fenced]
        for entry in admin.describe_log_dirs(brokers=live):
            _add_log_dirs(snap, int(entry["broker"]), entry["log_dirs"])
        return snap
    finally:
        admin.close()


def _add_log_dirs(snap: _Snapshot, broker: int, log_dirs: list[dict[str, Any]]) -> None:
    total = 0
    for d in log_dirs:
        if d.get("error_code", 0) != 0:
            continue
        total += max(int(d.get("total_bytes", -1)), 0)
        for t in d.get("topics", []):
            for p in t["partitions"]:
                if p.get("is_future_key"):
                    continue  # a copy being moved between log dirs, not the replica itself
                snap.sizes[(t["name"], int(p["partition_index"]), broker)] = int(p["partition_size"])
    if total > 0:
        snap.disk_bytes[broker] = total


def _brokers(snap: _Snapshot, endpoints: Mapping[int, tuple[str, int]], racks: Mapping[int, str],
             cells: Mapping[int, str], states: Mapping[int, BrokerState],
             capacities: Mapping[int, BrokerCapacity]) -> list[Broker]:
    ids = set(snap.brokers) | set(endpoints) | {b for reps, _, _ in snap.partitions.values() for b in reps}
    out = []
    for b in sorted(ids):
        rack, fenced = snap.brokers.get(b, (None, True))
        state = BrokerState.DEAD if fenced else states.get(b, BrokerState.ALIVE)
        capacity = capacities.get(b)
        if capacity is None:
            disk = snap.disk_bytes.get(b)
            capacity = BrokerCapacity(disk_bytes=float(disk)) if disk else BrokerCapacity()
        out.append(Broker(id=b, zone=racks.get(b) or rack or UNKNOWN_ZONE, cell=cells.get(b, DEFAULT_CELL),
                          state=state, capacity=capacity))
    return out


# ---- traffic -----------------------------------------------------------------------------


def _topic_rates(first: dict[int, _Scrape], second: dict[int, _Scrape],
                 notes: list[str]) -> dict[tuple[int, str, str], float]:
    """(broker, topic, BytesInPerSec|BytesOutPerSec) -> bytes/s that broker served as leader."""
    rates: dict[tuple[int, str, str], float] = {}
    windows = []
    for b, now in second.items():
        if now.samples is None:
            continue
        before = first.get(b)
        counts_now = _by_topic(now.samples, TOPIC_COUNTER)
        if before is not None and before.samples is not None and now.at > before.at:
            elapsed = now.at - before.at
            windows.append(elapsed)
            counts_then = _by_topic(before.samples, TOPIC_COUNTER)
            moving = _by_topic(now.samples, TOPIC_RATE)
            for key, value in counts_now.items():
                delta = value - counts_then.get(key, 0.0)
                # a counter that went backwards means the broker restarted in between
                rates[(b, *key)] = delta / elapsed if delta >= 0 else moving.get(key, 0.0)
        else:
            for key, value in _by_topic(now.samples, TOPIC_RATE).items():
                rates[(b, *key)] = value
    if windows:
        notes.append(f"rates: counter increase over {min(windows):.1f}-{max(windows):.1f} s")
    else:
        notes.append("rates: the JMX exporter's one-minute moving averages")
    return rates


def _by_topic(samples: list[Sample], metric: str) -> dict[tuple[str, str], float]:
    out = {}
    for s in samples:
        if s.name == metric and "topic" in s.labels and s.labels.get("name") in (BYTES_IN, BYTES_OUT):
            out[(s.labels["topic"], s.labels["name"])] = s.value
    return out


def _log_growth(first: dict[int, _Scrape], second: dict[int, _Scrape]) -> dict[tuple[int, str, int], float]:
    """(broker, topic, partition) -> bytes its log grew between the scrapes."""
    def sizes(scr: _Scrape | None) -> dict[tuple[str, int], float]:
        if scr is None or scr.samples is None:
            return {}
        return {(s.labels["topic"], int(s.labels["partition"])): s.value for s in scr.samples
                if s.name == LOG_METRIC and s.labels.get("name") == "Size"
                and "topic" in s.labels and s.labels.get("partition", "").isdigit()}

    growth: dict[tuple[int, str, int], float] = {}
    for b, now in second.items():
        then = sizes(first.get(b))
        for key, value in sizes(now).items():
            if key in then:
                growth[(b, *key)] = max(value - then[key], 0.0)
    return growth


def _attribute_rates(partitions: list[Partition], rates: dict[tuple[int, str, str], float],
                     growth: dict[tuple[int, str, int], float]) -> list[Partition]:
    led: dict[tuple[int, str], list[int]] = defaultdict(list)
    for n, p in enumerate(partitions):
        if p.leader is not None:
            led[(p.leader, p.topic)].append(n)
    rate_in = [0.0] * len(partitions)
    rate_out = [0.0] * len(partitions)
    for (broker, topic), members in led.items():
        weights = [growth.get((broker, topic, partitions[n].partition), 0.0) for n in members]
        if sum(weights) <= 0:
            weights = [1.0] * len(members)
        total_w = sum(weights)
        for n, w in zip(members, weights, strict=True):
            rate_in[n] = rates.get((broker, topic, BYTES_IN), 0.0) * w / total_w
            rate_out[n] = rates.get((broker, topic, BYTES_OUT), 0.0) * w / total_w
    return [p.model_copy(update={"bytes_in_per_s": rate_in[n], "bytes_out_per_s": rate_out[n]})
            for n, p in enumerate(partitions)]
