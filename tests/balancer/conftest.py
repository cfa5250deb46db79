"""Synthetic load models for the analyzer tests, the invariants every plan must keep, and a
real 3-broker cluster (run by a satellite) for the monitor."""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from streamplane.cli.local import LocalDeployment
from streamplane.engine.distribution import EngineResolver
from streamplane.loops.balancer.model import Broker, BrokerState, ClusterModel, Partition
from streamplane.loops.balancer.plan import Plan
from streamplane.models.psc import PhysicalClusterSpec
from streamplane.models.status import ClusterState, ClusterStatus
from streamplane.testing import scram_client_config, wait_for
from streamplane.versions import DEFAULT_KAFKA_VERSION

MIB = 1 << 20
HEALTHY_TIMEOUT_S = 180.0


@dataclass
class LoadCluster:
    local: LocalDeployment
    psc: PhysicalClusterSpec
    status: ClusterStatus

    @property
    def user(self) -> str:
        return self.psc.super_user.name

    @property
    def password(self) -> str:
        return self.psc.super_user.password.get_secret_value()

    def client_config(self) -> dict[str, str]:
        assert self.status.bootstrap
        return scram_client_config(self.status.bootstrap, self.user, self.password)


@pytest.fixture(scope="module")
def load_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadCluster]:
    """Three brokers in three zones, the third in a cell of its own; one KRaft controller."""
    EngineResolver().resolve(DEFAULT_KAFKA_VERSION)
    psc = PhysicalClusterSpec.model_validate({
        "id": "loadmon",
        "controllers": {"mode": "combined", "count": 1},
        "brokers": [{"id": 1, "zone": "zone-a"}, {"id": 2, "zone": "zone-b"},
                    {"id": 3, "zone": "zone-c", "cell": "cell-1"}],
        "broker_configs": {"default.replication.factor": "3", "min.insync.replicas": "2",
                           "group.initial.rebalance.delay.ms": "0"},
        "jvm": {"heap_mb": 256},
        "super_user": {"password": secrets.token_urlsafe(18)},
    })
    data_dir: Path = tmp_path_factory.mktemp("sat-loadmon")
    local = LocalDeployment(data_dir)
    try:
        local.source.submit(psc)
        local.start_satellite()

        def healthy() -> ClusterStatus | None:
            st = local.status(psc.id)
            ok = st is not None and st.status == ClusterState.HEALTHY and st.observed_generation == 1
            return st if ok else None

        yield LoadCluster(local, psc, wait_for(healthy, HEALTHY_TIMEOUT_S, f"cluster {psc.id} healthy"))
    finally:
        local.down()


def brokers(n: int, zones: int = 3, cells: Sequence[str] = ("cell-0",), start: int = 1) -> list[Broker]:
    """``n`` brokers spread round-robin over ``zones`` zones and the given cells."""
    return [Broker(id=start + i, zone=f"zone-{'abcdefgh'[i % zones]}", cell=cells[(i // zones) % len(cells)])
            for i in range(n)]


def synthetic(
    n_brokers: int = 9,
    zones: int = 3,
    topics: int = 20,
    partitions: int = 30,
    rf: int = 3,
    seed: int = 0,
    skew: float = 0.0,
    zipf: float = 0.0,
    topic_prefix: str = "t",
    broker_list: list[Broker] | None = None,
) -> ClusterModel:
    """A cluster placed the way Kafka places new topics (rack-aware round-robin from a
    random start), optionally skewed towards the first brokers of each zone (``skew`` > 0)
    and with Zipf-like partition sizes (``zipf`` > 0) instead of equal ones."""
    rng = random.Random(seed)
    bl = broker_list or brokers(n_brokers, zones)
    by_zone: dict[str, list[int]] = {}
    for b in bl:
        by_zone.setdefault(b.zone, []).append(b.id)
    zone_names = sorted(by_zone)
    parts = []
    rank = 0
    for t in range(topics):
        start = rng.randrange(len(bl))
        for p in range(partitions):
            reps: list[int] = []
            for k in range(rf):
                members = by_zone[zone_names[(start + p + k) % len(zone_names)]]
                members = [b for b in members if b not in reps] or [b for b in (x.id for x in bl) if b not in reps]
                if skew > 0:
                    weights = [1.0 / (1 + j) ** skew for j in range(len(members))]
                    reps.append(rng.choices(members, weights)[0])
                else:
                    reps.append(members[(start + p) // len(zone_names) % len(members)])
            rank += 1
            size = int(200 * MIB / rank ** zipf) if zipf else 100 * MIB
            heat = rng.uniform(0.5, 1.5) if zipf else 1.0
            parts.append(Partition(topic=f"{topic_prefix}{t}", partition=p, replicas=tuple(reps), leader=reps[0],
                                   size_bytes=size, bytes_in_per_s=size / 1000 * heat,
                                   bytes_out_per_s=size / 400 * heat))
    rng.shuffle(parts)  # so sizes are not sorted by topic
    return ClusterModel(cluster_id="test", brokers=bl, partitions=parts)


def check_plan(model: ClusterModel, plan: Plan) -> ClusterModel:
    """Apply ``plan`` to a copy of ``model`` after checking every move is well formed;
    return the result."""
    leaving = {b.id for b in model.brokers if b.state is not BrokerState.ALIVE}
    current = model.assignment()
    seen: dict[tuple[str, int], int] = {}
    for move in plan.moves:
        key = (move.topic, move.partition)
        assert move.old_replicas == current[key], f"{key}: move starts from a stale replica list"
        assert len(set(move.replicas)) == len(move.replicas), f"{key}: duplicate replica {move}"
        assert len(move.replicas) == len(move.old_replicas), f"{key}: replica count changed {move}"
        assert not set(move.added) & leaving, f"{key}: replica added on a leaving broker {move}"
        assert move.bytes_to_move == model.partition(*key).size_bytes * len(move.added)
        assert move.reason, f"{key}: move without a reason"
        current[key] = move.replicas
        seen[key] = seen.get(key, 0) + 1
    for key, n in seen.items():
        # only a leadership-first move off a leaving broker may precede the data move
        assert n == 1 or (n == 2 and model.partition(*key).leader in leaving), f"{key} moved {n} times"
    after = model.clone()
    after.apply_plan(plan)
    assert sorted(len(p.replicas) for p in after.partitions) == sorted(len(p.replicas) for p in model.partitions)
    return after


def distinct_zones(model: ClusterModel) -> bool:
    return all(len(set(model.zones_of(p))) == min(len(p.replicas), len(model.available_zones(p)))
               for p in model.partitions)
