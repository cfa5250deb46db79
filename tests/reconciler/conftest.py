"""Fakes for unit tests of the reconciler and the scheduler: no Kafka, no control channel.

The reconciler's collaborators are protocols (``Publisher``, ``Statuses``, ``BalanceView``,
``Directory``); here each is a small in-memory object the test sets by hand. The store is
real (SQLite in the test's tmp_path, with a hand-driven clock). ``World`` bundles them and
runs one reconcile cycle at a time, so a test reads as "the satellite reports X, the
balancer sees Y, the next cycle does Z".
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from streamplane.loops.balancer.loop import BalanceStatus, BrokerLoadOut, ExecutionSummary
from streamplane.models.psc import PhysicalClusterSpec
from streamplane.models.satellite import SatelliteInfo
from streamplane.models.status import ClusterState, ClusterStatus, NodeState, NodeStatus
from streamplane.mothership.reconciler import Reconciler
from streamplane.mothership.store import (
    ClusterType,
    LogicalCluster,
    LogicalClusterStatus,
    Operation,
    PhysicalCluster,
    SecretBox,
    Store,
)
from streamplane.mothership.store.testing import ManualClock
from streamplane.versions import DEFAULT_KAFKA_VERSION

SATELLITE = "sat-a"
SATELLITE_ZONE = "zone-a"

# ---- balance status: built here only, so a move of BalanceStatus changes one import -------

def broker_load(broker_id: int, replicas: int = 0, leaders: int = 0, *, zone: str = SATELLITE_ZONE,
                cell: str = "cell-0", state: str = "alive") -> BrokerLoadOut:
    """One broker as the balancer last saw it."""
    return BrokerLoadOut(id=broker_id, zone=zone, cell=cell, state=state, replicas=replicas,
                         leaders=leaders, disk_bytes=0.0, nw_in_bytes_per_s=0.0,
                         nw_out_bytes_per_s=0.0)


def execution(moves_done: int, moves_total: int, bytes_moved: int = 0, bytes_total: int = 0,
              eta_s: float | None = None) -> ExecutionSummary:
    """A rebalance the balancer is running now."""
    return ExecutionSummary(phase="moving", moves_done=moves_done, moves_total=moves_total,
                            moves_in_flight=1, bytes_moved=bytes_moved, bytes_total=bytes_total,
                            eta_s=eta_s, message="")


def balance_status(cluster_id: str, *, generation: int | None, balanced_generation: int | None = None,
                   evaluated_at: float | None = 1.0, brokers: Iterable[BrokerLoadOut] = (),
                   imbalance: dict[str, float] | None = None,
                   running: ExecutionSummary | None = None, **extra: Any) -> BalanceStatus:
    """What the balancing loop reports for one physical cluster."""
    return BalanceStatus(cluster_id=cluster_id, generation=generation,
                         balanced_generation=balanced_generation, evaluated_at=evaluated_at,
                         brokers=list(brokers), imbalance=imbalance or {}, execution=running,
                         **extra)


# ---- fakes of the reconciler's collaborators -------------------------------------------------


@dataclass
class FakePublisher:
    """Records every PSC published and every withdrawal, in order."""

    published: list[PhysicalClusterSpec] = field(default_factory=list)
    withdrawn: list[tuple[str, str]] = field(default_factory=list)

    async def publish(self, psc: PhysicalClusterSpec) -> int:
        self.published.append(psc)
        return len(self.published)

    async def withdraw(self, cluster_id: str, satellite: str) -> int:
        self.withdrawn.append((cluster_id, satellite))
        return len(self.withdrawn)

    def last(self, cluster_id: str) -> PhysicalClusterSpec | None:
        mine = [p for p in self.published if p.id == cluster_id]
        return mine[-1] if mine else None


@dataclass
class FakeStatuses:
    """The status topic as the satellites last wrote it; set per cluster by the test."""

    by_cluster: dict[tuple[str, str], ClusterStatus] = field(default_factory=dict)
    is_caught_up: bool = True

    def get(self, satellite: str, cluster_id: str) -> ClusterStatus | None:
        return self.by_cluster.get((satellite, cluster_id))

    @property
    def caught_up(self) -> bool:
        return self.is_caught_up

    def set(self, status: ClusterStatus) -> None:
        self.by_cluster[(status.satellite, status.id)] = status

    def clear(self, satellite: str, cluster_id: str) -> None:
        self.by_cluster.pop((satellite, cluster_id), None)


@dataclass
class FakeBalance:
    by_cluster: dict[str, BalanceStatus] = field(default_factory=dict)

    def status(self, cluster_id: str) -> BalanceStatus | None:
        return self.by_cluster.get(cluster_id)

    def set(self, status: BalanceStatus) -> None:
        self.by_cluster[status.cluster_id] = status


@dataclass
class FakeDirectory:
    """The satellites that announced themselves; all of them count as live."""

    satellites: list[SatelliteInfo] = field(default_factory=list)

    def live(self, max_age_s: float) -> list[SatelliteInfo]:
        return list(self.satellites)

    def all(self) -> list[SatelliteInfo]:
        return list(self.satellites)


def satellite(name: str = SATELLITE, zone: str = SATELLITE_ZONE, max_brokers: int = 20, *,
              clusters: Iterable[str] = (), brokers: int = 0) -> SatelliteInfo:
    return SatelliteInfo(name=name, zone=zone, max_brokers=max_brokers, memory_mb=16384,
                         clusters=list(clusters), brokers=brokers)


def cluster_status(psc: PhysicalClusterSpec, state: ClusterState = ClusterState.HEALTHY, *,
                   observed: int | None = None, registered: bool = True,
                   broker_ids: Iterable[int] | None = None, message: str = "") -> ClusterStatus:
    """What a satellite reports for ``psc``: by default healthy at its generation, every
    broker of the PSC registered."""
    ids = list(broker_ids) if broker_ids is not None else [b.id for b in psc.brokers]
    return ClusterStatus(
        id=psc.id, satellite=psc.satellite or SATELLITE, status=state, generation=psc.generation,
        observed_generation=psc.generation if observed is None else observed,
        kafka_version=psc.kafka_version, bootstrap="127.0.0.1:19092",
        brokers=[NodeStatus(id=i, roles=["broker"], state=NodeState.RUNNING, host="127.0.0.1",
                            port=19092 + i, metrics_port=29092 + i, registered=registered)
                 for i in ids],
        message=message)


# ---- the world one reconciler sees ------------------------------------------------------------


@dataclass
class World:
    store: Store
    publisher: FakePublisher
    statuses: FakeStatuses
    balance: FakeBalance
    directory: FakeDirectory
    reconciler: Reconciler

    def cycle(self) -> str:
        """One reconcile cycle; what it said."""
        return asyncio.run(self.reconciler.run_cycle())

    def lc(self, lc_id: str) -> LogicalCluster:
        return self.store.logical_clusters.get(lc_id)

    def pc(self, lc_id: str) -> PhysicalCluster:
        pc_id = self.lc(lc_id).physical_cluster_id
        assert pc_id is not None, f"{lc_id} has no physical cluster"
        return self.store.physical_clusters.get(pc_id)

    def op(self, op: Operation) -> Operation:
        return self.store.operations.get(op.id)

    def healthy(self, lc_id: str, **kwargs: Any) -> ClusterStatus:
        """The satellite reports the cluster's current PSC applied and healthy."""
        status = cluster_status(self.pc(lc_id).spec, **kwargs)
        self.statuses.set(status)
        return status

    def create(self, name: str, type: ClusterType, cku: int | None = None, zones: int = 1) -> LogicalCluster:
        """A cluster as the API records it, with its create operation."""
        lc = self.store.logical_clusters.create(name=name, type=type, cku=cku, zones=zones,
                                                kafka_version=DEFAULT_KAFKA_VERSION)
        self.store.operations.create("create_cluster", lc.id)
        return lc

    def running(self, name: str, type: ClusterType, cku: int | None = None, zones: int = 1,
                ) -> LogicalCluster:
        """A cluster taken to RUNNING by the reconciler: placed, published, reported healthy."""
        lc = self.create(name, type, cku, zones)
        self.cycle()  # placed
        self.cycle()  # published
        self.healthy(lc.id)
        self.cycle()  # RUNNING
        lc = self.lc(lc.id)
        assert lc.status == LogicalClusterStatus.RUNNING, lc
        return lc

    def scale(self, lc: LogicalCluster, cku: int) -> Operation:
        """A scale request as the API records it: new CKUs and a scale_cluster operation."""
        with self.store.transaction() as tx:
            tx.logical_clusters.update(lc.id, expected_generation=lc.generation, cku=cku)
            return tx.operations.create("scale_cluster", lc.id, request={"from_cku": lc.cku, "cku": cku})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'state' / 'mothership.db'}",
              secret_box=SecretBox.in_data_dir(tmp_path / "data"), clock=clock)
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def world(store: Store) -> World:
    publisher, statuses, balance = FakePublisher(), FakeStatuses(), FakeBalance()
    directory = FakeDirectory([satellite()])
    reconciler = Reconciler(store, publisher, statuses, directory, balancing=balance)
    return World(store, publisher, statuses, balance, directory, reconciler)
