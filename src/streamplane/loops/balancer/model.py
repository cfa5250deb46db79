"""The load model the analyzer plans on: brokers, partitions, and what each broker carries.

A ``ClusterModel`` is a snapshot (built by the monitor from a real cluster, or by hand in
tests and benchmarks) that can also be changed in place, one replica or leadership move at
a time, with the per-broker aggregates kept up to date. That is what makes what-if
evaluation cheap: the analyzer works on a ``clone()`` and compares it with the original.

Load definitions (the ones Cruise Control uses, minus CPU):

- disk: the bytes of every replica a broker hosts;
- network in: every replica receives the partition's produce traffic, the leader from
  producers and each follower by replication, so a broker's nw-in is the sum of bytes-in of
  every partition it hosts a replica of;
- network out: consumer traffic, served by the leader only;
- replica count and leader count.

Change assignments only through ``set_assignment``/``move_replica``/``move_leadership``/
``apply``: they keep the aggregates and indexes consistent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property, lru_cache

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from streamplane.loops.balancer.plan import PartitionMove, Plan
from streamplane.tenancy import DEFAULT_CELL

#: a topic named ``<lkc-id>_...`` belongs to logical cluster (tenant) ``<lkc-id>``
TENANT_TOPIC = re.compile(r"^(lkc-[a-z0-9]+)_")


class BrokerState(StrEnum):
    ALIVE = "alive"
    #: degraded or quarantined: takes nothing new and is emptied of leaders and replicas
    EXCLUDED = "excluded"
    #: on its way out (scale-in): emptied of leaders first, then of replicas
    DRAINING = "draining"
    #: not registered or fenced: its replicas are offline and must be re-created elsewhere
    DEAD = "dead"


class Resource(StrEnum):
    DISK = "disk"
    NW_IN = "nw_in"
    NW_OUT = "nw_out"
    REPLICAS = "replicas"
    LEADERS = "leaders"

    @property
    def leader_only(self) -> bool:
        """Only the leader carries it, so a leadership move shifts it."""
        return self in (Resource.NW_OUT, Resource.LEADERS)

    @property
    def follower_share(self) -> bool:
        """Every replica carries it, so only a replica move shifts it."""
        return not self.leader_only

    @property
    def countable(self) -> bool:
        return self in (Resource.REPLICAS, Resource.LEADERS)


class BrokerCapacity(BaseModel):
    """What one broker can carry; ``None`` = unknown, and capacity goals skip it."""

    model_config = ConfigDict(frozen=True)

    disk_bytes: float | None = Field(default=None, gt=0)
    nw_in_bytes_per_s: float | None = Field(default=None, gt=0)
    nw_out_bytes_per_s: float | None = Field(default=None, gt=0)

    def of(self, resource: Resource) -> float | None:
        if resource is Resource.DISK:
            return self.disk_bytes
        if resource is Resource.NW_IN:
            return self.nw_in_bytes_per_s
        if resource is Resource.NW_OUT:
            return self.nw_out_bytes_per_s
        return None


class Broker(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int = Field(ge=0)
    #: the rack Kafka knows it by (``broker.rack``); the satellite sets it to the zone
    zone: str
    cell: str = DEFAULT_CELL
    state: BrokerState = BrokerState.ALIVE
    capacity: BrokerCapacity = BrokerCapacity()

    @property
    def alive(self) -> bool:
        return self.state is BrokerState.ALIVE


class Partition(BaseModel):
    """One topic partition; ``replicas[0]`` is the preferred leader."""

    topic: str
    partition: int = Field(ge=0)
    replicas: tuple[int, ...]
    #: the current leader; ``None`` when the partition is offline
    leader: int | None
    #: in-sync replicas; ``None`` when unknown (synthetic models): every replica counts
    isr: tuple[int, ...] | None = None
    size_bytes: int = Field(default=0, ge=0)
    bytes_in_per_s: float = Field(default=0.0, ge=0)
    bytes_out_per_s: float = Field(default=0.0, ge=0)

    @property
    def key(self) -> tuple[str, int]:
        return (self.topic, self.partition)

    @property
    def name(self) -> str:
        return f"{self.topic}-{self.partition}"

    @property
    def tenant(self) -> str | None:
        return tenant_of(self.topic)

    @property
    def replication_factor(self) -> int:
        return len(self.replicas)

    def load(self, resource: Resource, as_leader: bool) -> float:
        """What one replica of this partition puts on its broker."""
        if resource is Resource.DISK:
            return float(self.size_bytes)
        if resource is Resource.NW_IN:
            return self.bytes_in_per_s
        if resource is Resource.REPLICAS:
            return 1.0
        if not as_leader:
            return 0.0
        return self.bytes_out_per_s if resource is Resource.NW_OUT else 1.0

    def in_sync(self, broker: int) -> bool:
        return broker in self.replicas and (self.isr is None or broker in self.isr)


class BrokerLoad(BaseModel):
    """What one broker carries, for printing and for tests."""

    broker: int
    disk_bytes: float = 0.0
    nw_in_bytes_per_s: float = 0.0
    nw_out_bytes_per_s: float = 0.0
    replicas: int = 0
    leaders: int = 0


@dataclass(slots=True)
class _Load:
    disk: float = 0.0
    nw_in: float = 0.0
    nw_out: float = 0.0
    replicas: int = 0
    leaders: int = 0

    def get(self, resource: Resource) -> float:
        if resource is Resource.DISK:
            return self.disk
        if resource is Resource.NW_IN:
            return self.nw_in
        if resource is Resource.NW_OUT:
            return self.nw_out
        return float(self.replicas if resource is Resource.REPLICAS else self.leaders)

    def add(self, p: Partition, as_leader: bool, sign: int) -> None:
        self.disk += sign * p.size_bytes
        self.nw_in += sign * p.bytes_in_per_s
        self.replicas += sign
        if as_leader:
            self.nw_out += sign * p.bytes_out_per_s
            self.leaders += sign


class ClusterModel(BaseModel):
    """A physical cluster's brokers, partitions and the load each broker carries."""

    cluster_id: str = ""
    brokers: list[Broker]
    partitions: list[Partition] = Field(default_factory=list)
    #: tenant (logical cluster id) -> the cell its replicas must stay in
    tenant_cells: dict[str, str] = Field(default_factory=dict)
    #: the cell of partitions that belong to no tenant (internal topics of a shared
    #: cluster), or None: they may go anywhere
    untenanted_cell: str | None = None
    #: how the figures were obtained, e.g. "rates over a 5.0 s window"
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> ClusterModel:
        ids = [b.id for b in self.brokers]
        if len(set(ids)) != len(ids):
            raise ValueError(f"broker ids must be unique; got {sorted(ids)}")
        known = set(ids)
        seen: set[tuple[str, int]] = set()
        for p in self.partitions:
            if p.key in seen:
                raise ValueError(f"partition {p.name} is listed twice")
            seen.add(p.key)
            _check_replicas(p, known)
        return self

    # The indexes and aggregates live in a plain object cached on the instance: the
    # analyzer reads them millions of times, and pydantic private attributes are slow.
    @cached_property
    def _ix(self) -> _Index:
        return _Index.build(self.brokers, self.partitions)

    # ---- brokers -----------------------------------------------------------------------

    def broker(self, broker_id: int) -> Broker:
        return self._ix.by_id[broker_id]

    @property
    def broker_ids(self) -> list[int]:
        return sorted(self._ix.by_id)

    def alive_brokers(self) -> list[int]:
        return sorted(b.id for b in self.brokers if b.alive)

    def cells(self) -> list[str]:
        return sorted({b.cell for b in self.brokers})

    # ---- partitions --------------------------------------------------------------------

    def index_of(self, topic: str, partition: int) -> int:
        return self._ix.index[(topic, partition)]

    def partition(self, topic: str, partition: int) -> Partition:
        return self.partitions[self._ix.index[(topic, partition)]]

    def hosted_by(self, broker_id: int) -> frozenset[int]:
        """Indexes of the partitions with a replica on ``broker_id``."""
        return frozenset(self._ix.hosted[broker_id])

    def led_by(self, broker_id: int) -> frozenset[int]:
        return frozenset(self._ix.led[broker_id])

    def iter_hosted(self, broker_id: int) -> Iterator[int]:
        """Like ``hosted_by`` without the copy; do not change the model while iterating."""
        return iter(self._ix.hosted[broker_id])

    def tenant_cell(self, p: Partition) -> str | None:
        """The cell a partition's replicas must stay in, or ``None`` if unconstrained."""
        tenant = p.tenant
        return self.tenant_cells.get(tenant) if tenant is not None else self.untenanted_cell

    def allowed_brokers(self, p: Partition) -> list[int]:
        """Live brokers that may host a replica of ``p``: its tenant's cell, or any."""
        return self._ix.scope(self.tenant_cell(p))[0]

    def available_zones(self, p: Partition) -> frozenset[str]:
        """Zones with a live broker that may host ``p``."""
        return self._ix.scope(self.tenant_cell(p))[1]

    def zones_of(self, p: Partition) -> list[str]:
        by_id = self._ix.by_id
        return [by_id[b].zone for b in p.replicas]

    # ---- load --------------------------------------------------------------------------

    def load_of(self, broker_id: int, resource: Resource) -> float:
        return self._ix.loads[broker_id].get(resource)

    def load(self, broker_id: int) -> BrokerLoad:
        ld = self._ix.loads[broker_id]
        return BrokerLoad(broker=broker_id, disk_bytes=ld.disk, nw_in_bytes_per_s=ld.nw_in,
                          nw_out_bytes_per_s=ld.nw_out, replicas=ld.replicas, leaders=ld.leaders)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def broker_loads(self) -> list[BrokerLoad]:
        return [self.load(b) for b in self.broker_ids]

    def total(self, resource: Resource, brokers: Iterable[int] | None = None) -> float:
        loads = self._ix.loads
        return sum(loads[b].get(resource) for b in (loads if brokers is None else brokers))

    # ---- changes -----------------------------------------------------------------------

    def set_assignment(self, index: int, replicas: tuple[int, ...], leader: int | None) -> None:
        """Give partition ``index`` a new replica list and leader, updating the aggregates.

        The ISR follows the move: a replica that is added counts as in sync (Kafka completes
        a reassignment only once it is), a removed one leaves it.
        """
        old = self.partitions[index]
        isr = old.isr
        if isr is not None:
            isr = tuple(b for b in replicas if b in isr or b not in old.replicas)
        new = old.model_copy(update={"replicas": replicas, "leader": leader, "isr": isr})
        _check_replicas(new, self._ix.by_id.keys())
        ix = self._ix
        ix.account(index, old, -1)
        self.partitions[index] = new
        ix.account(index, new, +1)

    def move_replica(self, index: int, source: int, destination: int) -> None:
        """Replace ``source`` by ``destination`` in the same position; a moved leader keeps
        leading from its new broker."""
        p = self.partitions[index]
        if source not in p.replicas or destination in p.replicas:
            raise ValueError(f"cannot move {p.name} from {source} to {destination}: "
                             f"replicas are {list(p.replicas)}")
        replicas = tuple(destination if b == source else b for b in p.replicas)
        leader = destination if p.leader == source else p.leader
        self.set_assignment(index, _leader_first(replicas, leader), leader)

    def move_leadership(self, index: int, destination: int) -> None:
        p = self.partitions[index]
        if destination not in p.replicas:
            raise ValueError(f"broker {destination} has no replica of {p.name}")
        self.set_assignment(index, _leader_first(p.replicas, destination), destination)

    def apply(self, move: PartitionMove) -> None:
        """Apply a plan's move as Kafka would: the new replica list, then a preferred
        leader election (``replicas[0]`` leads)."""
        self.set_assignment(self.index_of(move.topic, move.partition), move.replicas,
                            move.replicas[0])

    def apply_plan(self, plan: Plan) -> None:
        for move in plan.moves:
            self.apply(move)

    def clone(self) -> ClusterModel:
        """An independent model with the same brokers and assignment (cheap: partitions are
        shared until changed, aggregates are copied rather than recomputed)."""
        clone = self.model_copy(update={
            "partitions": list(self.partitions),
            "tenant_cells": dict(self.tenant_cells),
            "notes": list(self.notes),
        })
        # model_copy shares the cached index; give the clone its own
        clone.__dict__["_ix"] = self._ix.copy()
        return clone

    def with_broker_states(self, states: dict[int, BrokerState]) -> ClusterModel:
        """A copy in which some brokers changed state (e.g. marked draining for a scale-in)."""
        brokers = [b.model_copy(update={"state": states[b.id]}) if b.id in states else b
                   for b in self.brokers]
        return ClusterModel(cluster_id=self.cluster_id, brokers=brokers,
                            partitions=list(self.partitions), tenant_cells=dict(self.tenant_cells),
                            notes=list(self.notes))

    def with_brokers(self, added: Iterable[Broker]) -> ClusterModel:
        """A copy with more (empty) brokers, e.g. the ones a scale-out just started."""
        return ClusterModel(cluster_id=self.cluster_id, brokers=[*self.brokers, *added],
                            partitions=list(self.partitions), tenant_cells=dict(self.tenant_cells),
                            notes=list(self.notes))

    def assignment(self) -> dict[tuple[str, int], tuple[int, ...]]:
        return {p.key: p.replicas for p in self.partitions}

    # ---- reading -----------------------------------------------------------------------

    def describe(self) -> str:
        """A table of per-broker load, for ``streamplane cluster load``."""
        rows = [f"{'broker':>6} {'zone':<10} {'cell':<8} {'state':<9} {'replicas':>8} "
                f"{'leaders':>7} {'disk':>10} {'nw-in/s':>10} {'nw-out/s':>10}"]
        for b in sorted(self.brokers, key=lambda x: x.id):
            ld = self._ix.loads[b.id]
            rows.append(f"{b.id:>6} {b.zone:<10} {b.cell:<8} {b.state.value:<9} {ld.replicas:>8} "
                        f"{ld.leaders:>7} {human_bytes(ld.disk):>10} {human_bytes(ld.nw_in):>10} "
                        f"{human_bytes(ld.nw_out):>10}")
        tenants = {p.tenant for p in self.partitions if p.tenant}
        rows.append(f"{len(self.partitions)} partitions, {len(tenants)} tenant(s)")
        rows += self.notes
        return "\n".join(rows)


class _Index:
    """Who hosts and leads what, and each broker's load, kept current as moves apply."""

    def __init__(self, by_id: dict[int, Broker], index: dict[tuple[str, int], int],
                 loads: dict[int, _Load], hosted: dict[int, set[int]], led: dict[int, set[int]]) -> None:
        self.by_id = by_id
        self.index = index
        self.loads = loads
        self.hosted = hosted
        self.led = led
        self._scopes: dict[str | None, tuple[list[int], frozenset[str]]] = {}

    @classmethod
    def build(cls, brokers: list[Broker], partitions: list[Partition]) -> _Index:
        ix = cls({b.id: b for b in brokers}, {p.key: i for i, p in enumerate(partitions)},
                 {b.id: _Load() for b in brokers}, {b.id: set() for b in brokers},
                 {b.id: set() for b in brokers})
        for i, p in enumerate(partitions):
            ix.account(i, p, +1)
        return ix

    def copy(self) -> _Index:
        ix = _Index(self.by_id, self.index,
                    {b: _Load(x.disk, x.nw_in, x.nw_out, x.replicas, x.leaders)
                     for b, x in self.loads.items()},
                    {b: set(s) for b, s in self.hosted.items()},
                    {b: set(s) for b, s in self.led.items()})
        ix._scopes = self._scopes
        return ix

    def account(self, i: int, p: Partition, sign: int) -> None:
        for b in p.replicas:
            self.loads[b].add(p, b == p.leader, sign)
            if sign > 0:
                self.hosted[b].add(i)
            else:
                self.hosted[b].discard(i)
        if p.leader is not None:
            if sign > 0:
                self.led[p.leader].add(i)
            else:
                self.led[p.leader].discard(i)

    def scope(self, cell: str | None) -> tuple[list[int], frozenset[str]]:
        """Live brokers of ``cell`` (or of the cluster) and their zones."""
        hit = self._scopes.get(cell)
        if hit is None:
            ids = sorted(b.id for b in self.by_id.values()
                         if b.alive and (cell is None or b.cell == cell))
            hit = (ids, frozenset(self.by_id[i].zone for i in ids))
            self._scopes[cell] = hit
        return hit


@lru_cache(maxsize=65536)
def tenant_of(topic: str) -> str | None:
    """The logical cluster a topic belongs to, by its ``<lkc-id>_`` prefix."""
    m = TENANT_TOPIC.match(topic)
    return m.group(1) if m else None


def human_bytes(n: float) -> str:
    if n < 1024:
        return f"{n:.0f} B"
    exp = min(int(math.log(n, 1024)), 4)
    return f"{n / 1024 ** exp:.1f} {'BKMGT'[exp]}{'iB' if exp else ''}"


def _leader_first(replicas: tuple[int, ...], leader: int | None) -> tuple[int, ...]:
    if leader is None or not replicas or replicas[0] == leader:
        return replicas
    return (leader, *(b for b in replicas if b != leader))


def _check_replicas(p: Partition, known: Iterable[int]) -> None:
    if not p.replicas:
        raise ValueError(f"partition {p.name} has no replicas")
    if len(set(p.replicas)) != len(p.replicas):
        raise ValueError(f"partition {p.name} lists a broker twice: {list(p.replicas)}")
    missing = set(p.replicas) - set(known)
    if missing:
        raise ValueError(f"partition {p.name} has replicas on unknown brokers {sorted(missing)}")
    if p.leader is not None and p.leader not in p.replicas:
        raise ValueError(f"partition {p.name}: leader {p.leader} is not one of its replicas "
                         f"{list(p.replicas)}")
