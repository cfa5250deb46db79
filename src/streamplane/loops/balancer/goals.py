"""Balancing goals, each a small class, optimized one after another in priority order.

As in Cruise Control, a goal can (i) measure how far the model is from it, (ii) change the
model towards it through an ``Optimization`` (which asks every goal optimized before it
whether the change is acceptable), and (iii) veto a change that would break it. So a goal
later in the order can never undo what an earlier one achieved.

Hard goals come first: rack (zone) awareness, cell containment, emptying brokers that are
excluded, draining or dead, and capacity limits. Soft goals follow: replica count, disk,
network-in, leader count and network-out evened out across the live brokers of a cell.

Whatever the goal, a replica only ever moves to a live broker its partition may use (its
tenant's cell, if it has one), and never to a broker that already holds a replica of it.
"""

from __future__ import annotations

import bisect
import math
from abc import ABC, abstractmethod
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streamplane.loops.balancer.model import ClusterModel, Partition, Resource


class GoalConfig(BaseModel):
    """The numbers the goals work to; one instance is shared by every goal of an analyzer."""

    model_config = ConfigDict(frozen=True)

    #: a soft goal acts only once some broker is further than this from its target (mean)
    balance_threshold: float = Field(default=0.10, gt=0, lt=1)
    #: when it acts, it aims this close, so the next run does not trip on small drift
    balance_target: float = Field(default=0.08, gt=0, lt=1)
    #: capacity goals keep every broker's disk and network under this share of capacity
    capacity_threshold: float = Field(default=0.80, gt=0, le=1)
    #: below these means a resource is too idle to be worth moving data for
    min_balanced_load: dict[Resource, float] = Field(default_factory=lambda: {
        Resource.DISK: float(1 << 20),
        Resource.NW_IN: 1024.0,
        Resource.NW_OUT: 1024.0,
    })
    #: at most this many improvement passes per soft goal
    max_passes: int = Field(default=25, ge=1)
    #: destinations tried per candidate replica before giving up on it
    destinations_per_candidate: int = Field(default=6, ge=1)

    @model_validator(mode="after")
    def _target_inside_threshold(self) -> GoalConfig:
        if self.balance_target > self.balance_threshold:
            raise ValueError(f"balance_target {self.balance_target} must not exceed balance_threshold "
                             f"{self.balance_threshold}: goals would chase a spread they accept")
        return self


#: replica-swap partners tried per broker, and swap pairs per partner, before giving up
_SWAP_PARTNERS = 6
_SWAP_ATTEMPTS = 60
_EDGE = 1e-9


class ActionKind(StrEnum):
    REPLICA = "replica"
    LEADERSHIP = "leadership"


@dataclass(frozen=True, slots=True)
class Action:
    """One elementary change: a replica moves from ``source`` to ``destination``, or the
    leadership of a partition does."""

    kind: ActionKind
    partition: int
    source: int
    destination: int

    def amount(self, model: ClusterModel, resource: Resource) -> float:
        """How much of ``resource`` goes from ``source`` to ``destination``."""
        p = model.partitions[self.partition]
        if self.kind is ActionKind.REPLICA:
            return p.load(resource, as_leader=p.leader == self.source)
        return p.load(resource, as_leader=True) if resource.leader_only else 0.0


@dataclass
class Optimization:
    """The working model plus the goals already optimized, whose vetoes every change must
    pass, and a record of why each partition changed."""

    model: ClusterModel
    config: GoalConfig
    done: list[Goal] = field(default_factory=list)
    reasons: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    #: partition -> the broker that took its leadership off an excluded/draining broker
    drain_leaders: dict[int, int] = field(default_factory=dict)
    #: bumped whenever a broker gains or loses a replica or leadership (for caches)
    versions: Counter[int] = field(default_factory=Counter)
    actions: int = 0

    def legal(self, action: Action) -> bool:
        m = self.model
        p = m.partitions[action.partition]
        dest = m.broker(action.destination)
        if not dest.alive:
            return False
        if action.kind is ActionKind.LEADERSHIP:
            return p.leader == action.source and p.in_sync(action.destination)
        if action.source not in p.replicas or action.destination in p.replicas:
            return False
        cell = m.tenant_cell(p)
        return cell is None or dest.cell == cell

    def apply(self, change: Sequence[Action], reason: str) -> bool:
        """Make the change (one action, or a swap of two on different partitions) if it is
        legal and no goal optimized so far objects."""
        if len({a.partition for a in change}) != len(change):
            return False
        if not all(self.legal(a) for a in change):
            return False
        if any(not g.accepts(self.model, change) for g in self.done):
            return False
        for a in change:
            if a.kind is ActionKind.REPLICA:
                self.model.move_replica(a.partition, a.source, a.destination)
            else:
                self.model.move_leadership(a.partition, a.destination)
            self.versions[a.source] += 1
            self.versions[a.destination] += 1
            self.reasons[a.partition].append(reason)
        self.actions += 1
        return True

    def apply_one(self, action: Action, reason: str) -> bool:
        return self.apply((action,), reason)


class Goal(ABC):
    name: str
    hard: ClassVar[bool] = False

    @abstractmethod
    def imbalance(self, model: ClusterModel) -> float:
        """0 when the goal is met; larger is further away (a count or a relative spread)."""

    @abstractmethod
    def optimize(self, opt: Optimization) -> None:
        """Move the working model towards the goal through ``opt.apply``."""

    def accepts(self, model: ClusterModel, change: Sequence[Action]) -> bool:
        """Whether ``change`` keeps this (already optimized) goal as good as it is."""
        return True

    def unmet(self, model: ClusterModel) -> str | None:
        """For a hard goal: why it is still not met after optimizing, in a sentence."""
        return None


# ---- hard goals ---------------------------------------------------------------------------


class RackAwareGoal(Goal):
    """Replicas of a partition on distinct zones, as far as the live brokers allow."""

    name = "rack-aware"
    hard = True

    @staticmethod
    def required(model: ClusterModel, p: Partition) -> int:
        return min(p.replication_factor, len(model.available_zones(p)))

    def imbalance(self, model: ClusterModel) -> float:
        return float(sum(1 for p in model.partitions
                         if len(set(model.zones_of(p))) < self.required(model, p)))

    def optimize(self, opt: Optimization) -> None:
        m = opt.model
        for i, p in enumerate(m.partitions):
            if len(set(m.zones_of(p))) < self.required(m, p):
                self._spread(opt, i)

    def _spread(self, opt: Optimization, i: int) -> None:
        m = opt.model
        while True:
            p = m.partitions[i]
            zones = m.zones_of(p)
            if len(set(zones)) >= self.required(m, p):
                return
            counts = Counter(zones)
            crowded = [b for b, z in zip(p.replicas, zones, strict=True) if counts[z] > 1]
            # move a follower rather than the leader, and off the busiest broker first
            crowded.sort(key=lambda b: (b == p.leader, -m.load_of(b, Resource.REPLICAS)))
            free = [d for d in m.allowed_brokers(p) if m.broker(d).zone not in counts]
            free.sort(key=lambda d: (m.load_of(d, Resource.REPLICAS), m.load_of(d, Resource.DISK)))
            if not any(opt.apply_one(Action(ActionKind.REPLICA, i, src, dst),
                                 f"{self.name}: two replicas shared zone {m.broker(src).zone}")
                       for src in crowded for dst in free):
                return

    def accepts(self, model: ClusterModel, change: Sequence[Action]) -> bool:
        return all(self._keeps_spread(model, a) for a in change)

    def _keeps_spread(self, model: ClusterModel, action: Action) -> bool:
        if action.kind is ActionKind.LEADERSHIP:
            return True
        p = model.partitions[action.partition]
        before = model.zones_of(p)
        dest_zone = model.broker(action.destination).zone
        after = [dest_zone if b == action.source else z
                 for b, z in zip(p.replicas, before, strict=True)]
        return len(set(after)) >= min(len(set(before)), self.required(model, p))

    def unmet(self, model: ClusterModel) -> str | None:
        short: dict[tuple[int, int, str], list[str]] = defaultdict(list)
        crowded: list[str] = []
        for p in model.partitions:
            zones = model.available_zones(p)
            if len(zones) < p.replication_factor:
                cell = model.tenant_cell(p)
                short[(p.replication_factor, len(zones), cell or "")].append(p.name)
            elif len(set(model.zones_of(p))) < p.replication_factor:
                crowded.append(p.name)
        sentences = []
        for (rf, nz, cell), names in sorted(short.items()):
            where = f" in cell {cell}" if cell else ""
            sentences.append(f"{len(names)} partition(s) (e.g. {names[0]}): {rf} replicas need {rf} "
                             f"zones but only {nz} have live brokers{where}")
        if crowded:
            sentences.append(f"{len(crowded)} partition(s) (e.g. {crowded[0]}) could not be spread "
                             "over distinct zones without breaking another hard goal")
        return "; ".join(sentences) or None


class CellContainmentGoal(Goal):
    """A tenant's replicas stay inside the cell it is assigned to."""

    name = "cell-containment"
    hard = True

    @staticmethod
    def outside(model: ClusterModel, p: Partition) -> list[int]:
        cell = model.tenant_cell(p)
        if cell is None:
            return []
        return [b for b in p.replicas if model.broker(b).cell != cell]

    def imbalance(self, model: ClusterModel) -> float:
        return float(sum(1 for p in model.partitions if self.outside(model, p)))

    def optimize(self, opt: Optimization) -> None:
        m = opt.model
        for i in range(len(m.partitions)):
            for src in self.outside(m, m.partitions[i]):
                p = m.partitions[i]
                used = {m.broker(b).zone for b in p.replicas if b != src}
                dests = sorted((d for d in m.allowed_brokers(p) if d not in p.replicas),
                               key=lambda d: (m.broker(d).zone in used,
                                              m.load_of(d, Resource.REPLICAS)))
                reason = f"{self.name}: {_owner(p)} lives in cell {m.tenant_cell(p)}"
                for dst in dests:
                    if opt.apply_one(Action(ActionKind.REPLICA, i, src, dst), reason):
                        break

    def accepts(self, model: ClusterModel, change: Sequence[Action]) -> bool:
        for a in change:
            cell = model.tenant_cell(model.partitions[a.partition])
            if a.kind is ActionKind.REPLICA and cell is not None and model.broker(a.destination).cell != cell:
                return False
        return True

    def unmet(self, model: ClusterModel) -> str | None:
        by_tenant: dict[str, list[Partition]] = defaultdict(list)
        for p in model.partitions:
            if self.outside(model, p) and p.tenant:
                by_tenant[p.tenant].append(p)
        sentences = []
        for tenant, parts in sorted(by_tenant.items()):
            cell = model.tenant_cells[tenant]
            live = len(model.allowed_brokers(parts[0]))
            rf = max(p.replication_factor for p in parts)
            sentences.append(f"tenant {tenant}: {len(parts)} partition(s) keep replicas outside "
                             f"cell {cell}, which has {live} live broker(s) for up to {rf} replicas")
        return "; ".join(sentences) or None


def _owner(p: Partition) -> str:
    return f"tenant {p.tenant}" if p.tenant else f"internal topic {p.topic}"


class BrokerDrainGoal(Goal):
    """Nothing on excluded, draining or dead brokers: leadership first, then replicas."""

    name = "broker-drain"
    hard = True

    def imbalance(self, model: ClusterModel) -> float:
        return float(sum(model.load_of(b.id, Resource.REPLICAS) + model.load_of(b.id, Resource.LEADERS)
                         for b in model.brokers if not b.alive))

    def optimize(self, opt: Optimization) -> None:
        m = opt.model
        leaving = [b for b in m.brokers if not b.alive]
        for b in leaving:
            for i in sorted(m.led_by(b.id)):
                p = m.partitions[i]
                followers = sorted((f for f in p.replicas if f != b.id and m.broker(f).alive),
                                   key=lambda f: m.load_of(f, Resource.LEADERS))
                for f in followers:
                    if opt.apply_one(Action(ActionKind.LEADERSHIP, i, b.id, f),
                                 f"{self.name}: leadership off {b.state.value} broker {b.id}"):
                        opt.drain_leaders[i] = f
                        break
        for b in leaving:
            reason = f"{self.name}: broker {b.id} is {b.state.value}"
            for i in sorted(m.hosted_by(b.id), key=lambda i: m.partitions[i].size_bytes):
                p = m.partitions[i]
                used = {m.broker(r).zone for r in p.replicas if r != b.id}
                dests = sorted((d for d in m.allowed_brokers(p) if d not in p.replicas),
                               key=lambda d: (m.broker(d).zone in used and m.broker(d).zone != b.zone,
                                              m.load_of(d, Resource.DISK),
                                              m.load_of(d, Resource.REPLICAS)))
                for dst in dests:
                    if opt.apply_one(Action(ActionKind.REPLICA, i, b.id, dst), reason):
                        break

    def accepts(self, model: ClusterModel, change: Sequence[Action]) -> bool:
        return all(model.broker(a.destination).alive for a in change)

    def unmet(self, model: ClusterModel) -> str | None:
        sentences = []
        for b in model.brokers:
            if b.alive:
                continue
            replicas = int(model.load_of(b.id, Resource.REPLICAS))
            if not replicas:
                continue
            why = ("no live broker can take them without breaking a higher-priority goal "
                   "(zone spread, cell or capacity)" if model.alive_brokers() else "no broker is live")
            sentences.append(f"broker {b.id} ({b.state.value}) still holds {replicas} replica(s): {why}")
        return "; ".join(sentences) or None


class CapacityGoal(Goal):
    """Every live broker under ``capacity_threshold`` of its disk or network capacity."""

    hard = True

    def __init__(self, resource: Resource, config: GoalConfig) -> None:
        if resource.countable:
            raise ValueError(f"{resource} has no capacity")
        self.resource = resource
        self.config = config
        self.name = f"{resource.value.replace('_', '-')}-capacity"

    def limit(self, model: ClusterModel, broker: int) -> float | None:
        cap = model.broker(broker).capacity.of(self.resource)
        return None if cap is None else cap * self.config.capacity_threshold

    def over(self, model: ClusterModel) -> list[int]:
        out = []
        for b in model.alive_brokers():
            lim = self.limit(model, b)
            if lim is not None and model.load_of(b, self.resource) > lim:
                out.append(b)
        return out

    def imbalance(self, model: ClusterModel) -> float:
        return float(len(self.over(model)))

    def optimize(self, opt: Optimization) -> None:
        m = opt.model
        for b in sorted(self.over(m), key=lambda b: -self._utilization(m, b)):
            lim = self.limit(m, b)
            assert lim is not None
            reason = f"{self.name}: broker {b} above {self.config.capacity_threshold:.0%} of capacity"
            for kind, i in _candidates(m, b, self.resource):
                if m.load_of(b, self.resource) <= lim:
                    break
                p = m.partitions[i]
                dests = p.replicas if kind is ActionKind.LEADERSHIP else m.allowed_brokers(p)
                for d in sorted(dests, key=lambda d: self._utilization(m, d)):
                    if d != b and opt.apply_one(Action(kind, i, b, d), reason):
                        break

    def _utilization(self, model: ClusterModel, broker: int) -> float:
        cap = model.broker(broker).capacity.of(self.resource)
        return model.load_of(broker, self.resource) / cap if cap else 0.0

    def accepts(self, model: ClusterModel, change: Sequence[Action]) -> bool:
        if not any(self.limit(model, a.destination) is not None for a in change):
            return True
        for b, delta in _deltas(model, change, self.resource).items():
            lim = self.limit(model, b)
            if delta > 0 and lim is not None and model.load_of(b, self.resource) + delta > lim:
                return False
        return True

    def unmet(self, model: ClusterModel) -> str | None:
        over = self.over(model)
        if not over:
            return None
        alive = model.alive_brokers()
        caps = [model.broker(b).capacity.of(self.resource) or 0.0 for b in alive]
        total = model.total(self.resource, alive)
        share = total / sum(caps) if sum(caps) else math.inf
        worst = max(over, key=lambda b: self._utilization(model, b))
        return (f"{len(over)} broker(s) above {self.config.capacity_threshold:.0%} of their "
                f"{self.resource.value} capacity (broker {worst} at "
                f"{self._utilization(model, worst):.0%}); the live brokers together are at "
                f"{share:.0%}: add brokers")


# ---- soft goals ---------------------------------------------------------------------------


class DistributionGoal(Goal):
    """One resource evened out: every live broker within ``balance_threshold`` of its target.

    The target is the mean of the broker's cell. When every partition of a cell has exactly
    one replica per zone (replication factor = zones), each zone carries a fixed share of
    the replica-borne load, so brokers are compared with the mean of their zone instead:
    otherwise a zone with fewer brokers could never look balanced.

    It first moves single replicas (or leadership), then, where no single move fits the
    window, swaps two: a swap shifts the difference of two loads and leaves counts alone.
    """

    def __init__(self, resource: Resource, config: GoalConfig) -> None:
        self.resource = resource
        self.config = config
        self.name = f"{resource.value.replace('_', '-')}-distribution"
        self._targets: dict[int, float] | None = None
        self._groups: dict[int, tuple[str, str]] = {}
        self._cache: dict[int, tuple[int, list[tuple[ActionKind, int]]]] = {}
        self._held: dict[int, tuple[int, list[float], list[int]]] = {}

    @property
    def kind(self) -> ActionKind:
        """The action that shifts this resource without copying data, if any."""
        return ActionKind.LEADERSHIP if self.resource.leader_only else ActionKind.REPLICA

    # -- measuring --

    def targets(self, model: ClusterModel) -> dict[int, float]:
        """Each live broker's target: the mean of its balance group."""
        return self._measure(model)[0]

    def _measure(self, model: ClusterModel) -> tuple[dict[int, float], dict[int, tuple[str, str]]]:
        """Targets, and each live broker's balance group: (cell, zone if zone-pinned else "")."""
        members: dict[tuple[str, str], list[int]] = defaultdict(list)
        for cell in model.cells():
            alive = [b for b in model.alive_brokers() if model.broker(b).cell == cell]
            by_zone = not self.resource.leader_only and _zone_pinned(model, cell, alive)
            for b in alive:
                members[(cell, model.broker(b).zone if by_zone else "")].append(b)
        targets: dict[int, float] = {}
        groups: dict[int, tuple[str, str]] = {}
        for key, brokers in members.items():
            mean = model.total(self.resource, brokers) / len(brokers)
            for b in brokers:
                targets[b] = mean
                groups[b] = key
        return targets, groups

    def window(self, target: float, tolerance: float) -> tuple[float, float]:
        if target < self.config.min_balanced_load.get(self.resource, 0.0) or target <= 0:
            return (-math.inf, math.inf)
        lo, hi = target * (1 - tolerance), target * (1 + tolerance)
        if self.resource.countable:
            lo, hi = min(lo, math.floor(target)), max(hi, math.ceil(target))
        # a broker exactly on the edge is inside, whatever the float rounding of the mean
        return lo - abs(lo) * _EDGE, hi + abs(hi) * _EDGE

    def imbalance(self, model: ClusterModel) -> float:
        """The largest relative distance of a live broker from its target."""
        worst = 0.0
        for b, t in self.targets(model).items():
            if not math.isinf(self.window(t, 0.0)[0]):
                worst = max(worst, abs(model.load_of(b, self.resource) / t - 1))
        return worst

    def _outside(self, model: ClusterModel, targets: dict[int, float], tolerance: float) -> list[int]:
        out = []
        for b, t in targets.items():
            lo, hi = self.window(t, tolerance)
            if not lo <= model.load_of(b, self.resource) <= hi:
                out.append(b)
        return out

    def _ratio(self, model: ClusterModel, b: int, targets: dict[int, float]) -> float:
        t = targets[b]
        return model.load_of(b, self.resource) / t if t > 0 else 1.0

    # -- optimizing --

    def optimize(self, opt: Optimization) -> None:
        m = opt.model
        targets, self._groups = self._measure(m)
        self._targets = targets
        if not self._outside(m, targets, self.config.balance_threshold):
            return
        tol = self.config.balance_target
        for _ in range(self.config.max_passes):
            progress = False
            for b in sorted(self._outside(m, targets, tol), key=lambda b: -self._ratio(m, b, targets)):
                if m.load_of(b, self.resource) > targets[b]:
                    progress |= self._shed(opt, b, targets)
                else:
                    progress |= self._fill(opt, b, targets)
            if not self.resource.countable:
                for b in self._outside(m, targets, tol):
                    progress |= self._swap_all(opt, b, targets)
            targets, self._groups = self._measure(m)
            self._targets = targets
            if not progress or not self._outside(m, targets, tol):
                break
        self._cache.clear()
        self._held.clear()

    def _improves(self, model: ClusterModel, src: int, dst: int, x: float,
                  targets: dict[int, float]) -> bool:
        """Shifting ``x`` from ``src`` to ``dst`` keeps both inside their target windows
        and brings the two closer to their targets (lower squared relative distance)."""
        ts, td = targets.get(src), targets.get(dst)
        if ts is None or td is None or ts <= 0 or td <= 0 or x <= 0:
            return False
        tol = self.config.balance_target
        ls, ld = model.load_of(src, self.resource), model.load_of(dst, self.resource)
        if ld + x > self.window(td, tol)[1] or ls - x < self.window(ts, tol)[0]:
            return False
        before = (ls / ts - 1) ** 2 + (ld / td - 1) ** 2
        after = ((ls - x) / ts - 1) ** 2 + ((ld + x) / td - 1) ** 2
        return after < before - 1e-12

    def _partners(self, model: ClusterModel, b: int, targets: dict[int, float],
                  lighter: bool) -> list[int]:
        """Brokers to trade with, most off-target first. In a zone-pinned group only its own
        members: a replica leaving the zone would leave its partition without one there."""
        group = self._groups.get(b)
        pinned = group is not None and group[1] != ""
        sign = 1 if lighter else -1
        return sorted((d for d in targets if d != b and (not pinned or self._groups.get(d) == group)),
                      key=lambda d: (self._groups.get(d) != group, sign * self._ratio(model, d, targets)))

    def _sorted_candidates(self, opt: Optimization, b: int) -> list[tuple[ActionKind, int]]:
        version = opt.versions[b]
        hit = self._cache.get(b)
        if hit is None or hit[0] != version:
            hit = (version, _candidates(opt.model, b, self.resource))
            self._cache[b] = hit
        return hit[1]

    def _shed(self, opt: Optimization, b: int, targets: dict[int, float]) -> bool:
        m = opt.model
        hi_b = self.window(targets[b], self.config.balance_target)[1]
        reason = f"{self.name}: broker {b} at {self._ratio(m, b, targets):.0%} of its target"
        mine = self._ratio(m, b, targets)
        partners = [d for d in self._partners(m, b, targets, lighter=True)
                    if self._ratio(m, d, targets) < mine]
        moved = False
        for kind, i in list(self._sorted_candidates(opt, b)):
            if m.load_of(b, self.resource) <= hi_b:
                break
            p = m.partitions[i]
            if not _movable(p, kind, b):
                continue
            x = Action(kind, i, b, b).amount(m, self.resource)
            tries = 0
            for d in partners:
                if (d in p.replicas) != (kind is ActionKind.LEADERSHIP):
                    continue
                if not self._improves(m, b, d, x, targets):
                    continue
                if opt.apply((Action(kind, i, b, d),), reason):
                    moved = True
                    break
                tries += 1
                if tries >= self.config.destinations_per_candidate:
                    break
        return moved

    def _fill(self, opt: Optimization, d: int, targets: dict[int, float]) -> bool:
        m = opt.model
        lo_d = self.window(targets[d], self.config.balance_target)[0]
        reason = f"{self.name}: broker {d} at {self._ratio(m, d, targets):.0%} of its target"
        moved = False
        while m.load_of(d, self.resource) < lo_d:
            mine = self._ratio(m, d, targets)
            sources = [s for s in self._partners(m, d, targets, lighter=False)
                       if self._ratio(m, s, targets) > mine]
            if not any(self._pull_one(opt, s, d, targets, reason) for s in sources):
                break
            moved = True
        return moved

    def _pull_one(self, opt: Optimization, s: int, d: int, targets: dict[int, float],
                  reason: str) -> bool:
        m = opt.model
        for kind, i in self._sorted_candidates(opt, s):
            p = m.partitions[i]
            if not _movable(p, kind, s) or (d in p.replicas) != (kind is ActionKind.LEADERSHIP):
                continue
            x = Action(kind, i, s, d).amount(m, self.resource)
            if self._improves(m, s, d, x, targets) and opt.apply((Action(kind, i, s, d),), reason):
                return True
        return False

    def _swap_all(self, opt: Optimization, b: int, targets: dict[int, float]) -> bool:
        """Bring ``b`` into its window by swaps with brokers on the other side of the mean."""
        m = opt.model
        lo, hi = self.window(targets[b], self.config.balance_target)
        heavy = m.load_of(b, self.resource) > targets[b]
        mine = self._ratio(m, b, targets)
        partners = [d for d in self._partners(m, b, targets, lighter=heavy)
                    if (self._ratio(m, d, targets) < mine) == heavy]
        if self.kind is ActionKind.LEADERSHIP:
            # leadership only trades between brokers that share partitions
            shared = {f for i in m.led_by(b) for f in m.partitions[i].replicas}
            shared |= {lead for i in m.iter_hosted(b) if (lead := m.partitions[i].leader) is not None}
            partners = [d for d in partners if d in shared]
        else:
            partners = partners[:_SWAP_PARTNERS]
        moved = False
        for partner in partners:
            src, dst = (b, partner) if heavy else (partner, b)
            while self._swap(opt, src, dst, targets):
                moved = True
                if lo <= m.load_of(b, self.resource) <= hi:
                    return True
        return moved

    def _swap(self, opt: Optimization, src: int, dst: int, targets: dict[int, float]) -> bool:
        """One swap that shifts load from ``src`` to ``dst``: for each thing ``src`` could
        give (the smallest that can make up the difference first, so little is copied), the
        thing ``dst`` gives back whose load makes the difference closest to what evens the
        two out."""
        m = opt.model
        ts, td = targets[src], targets[dst]
        if ts <= 0 or td <= 0:
            return False
        best = (m.load_of(src, self.resource) / ts - m.load_of(dst, self.resource) / td) / (1 / ts + 1 / td)
        if best <= 0:
            return False
        kind = self.kind
        give_x, give_i = self._holdings(opt, src)
        take_x, take_i = self._holdings(opt, dst)
        reason = f"{self.name}: swap between brokers {src} and {dst}"
        attempts = 0
        # first what can shift ``best`` on its own, smallest first; then the smaller ones
        k0 = bisect.bisect_left(give_x, best)
        for n in [*range(k0, len(give_x)), *range(k0 - 1, -1, -1)]:
            xp, i = give_x[n], give_i[n]
            if xp <= 0 or not self._can_take(m, i, dst, kind):
                continue
            k = bisect.bisect_left(take_x, xp - best)
            for j in _outward(take_i, k, lambda j: self._can_take(m, j, src, kind), limit=2):
                net = xp - m.partitions[j].load(self.resource, as_leader=m.partitions[j].leader == dst)
                if i == j or not self._improves(m, src, dst, net, targets):
                    continue
                if opt.apply((Action(kind, i, src, dst), Action(kind, j, dst, src)), reason):
                    return True
                attempts += 1
            if attempts >= _SWAP_ATTEMPTS:
                break
        return False

    @staticmethod
    def _can_take(model: ClusterModel, i: int, to: int, kind: ActionKind) -> bool:
        p = model.partitions[i]
        return p.in_sync(to) if kind is ActionKind.LEADERSHIP else to not in p.replicas

    def _holdings(self, opt: Optimization, b: int) -> tuple[list[float], list[int]]:
        """What ``b`` could hand over in a swap, sorted by the load it carries."""
        version = opt.versions[b]
        hit = self._held.get(b)
        if hit is None or hit[0] != version:
            m = opt.model
            if self.kind is ActionKind.LEADERSHIP:
                pairs = sorted((m.partitions[i].load(self.resource, as_leader=True), i) for i in m.led_by(b))
            else:
                pairs = sorted((m.partitions[i].load(self.resource, as_leader=m.partitions[i].leader == b), i)
                               for i in m.iter_hosted(b))
            hit = (version, [x for x, _ in pairs], [i for _, i in pairs])
            self._held[b] = hit
        return hit[1], hit[2]

    # -- vetoing --

    def accepts(self, model: ClusterModel, change: Sequence[Action]) -> bool:
        deltas = _deltas(model, change, self.resource)
        if not deltas:
            return True
        targets = self._targets if self._targets is not None else self.targets(model)
        for b, delta in deltas.items():
            t = targets.get(b)
            if t is None:
                continue
            lo, hi = self.window(t, self.config.balance_threshold)
            old = model.load_of(b, self.resource)
            new = old + delta
            if lo <= old <= hi:
                if not lo <= new <= hi:
                    return False
            elif _distance(new, lo, hi) > _distance(old, lo, hi):
                return False
        return True


def _outward(items: list[int], k: int, ok: Callable[[int], bool], limit: int) -> Iterator[int]:
    """Up to ``limit`` acceptable items on each side of position ``k``, nearest first."""
    below, above, found_below, found_above = k - 1, k, 0, 0
    while (below >= 0 and found_below < limit) or (above < len(items) and found_above < limit):
        if above < len(items) and found_above < limit:
            if ok(items[above]):
                found_above += 1
                yield items[above]
            above += 1
        if below >= 0 and found_below < limit:
            if ok(items[below]):
                found_below += 1
                yield items[below]
            below -= 1


def _deltas(model: ClusterModel, change: Sequence[Action], resource: Resource) -> dict[int, float]:
    """Net change of ``resource`` per broker; brokers that end even are left out."""
    deltas: dict[int, float] = defaultdict(float)
    for a in change:
        x = a.amount(model, resource)
        if x:
            deltas[a.source] -= x
            deltas[a.destination] += x
    return {b: d for b, d in deltas.items() if d}


def _movable(p: Partition, kind: ActionKind, b: int) -> bool:
    """``b`` still holds what the candidate moves (candidates go stale as moves apply)."""
    return p.leader == b if kind is ActionKind.LEADERSHIP else b in p.replicas


def _distance(v: float, lo: float, hi: float) -> float:
    return lo - v if v < lo else (v - hi if v > hi else 0.0)


def _zone_pinned(model: ClusterModel, cell: str, alive: Sequence[int]) -> bool:
    """Every partition with a replica in ``cell`` has exactly one replica per zone of it."""
    zones = {model.broker(b).zone for b in alive}
    if len(zones) < 2:
        return False
    seen: set[int] = set()
    for b in alive:
        for i in model.iter_hosted(b):
            if i in seen:
                continue
            seen.add(i)
            p = model.partitions[i]
            if p.replication_factor != len(zones) or set(model.zones_of(p)) != zones:
                return False
    return True


def _candidates(model: ClusterModel, b: int, resource: Resource) -> list[tuple[ActionKind, int]]:
    """Ways to take ``resource`` off broker ``b``, best first: leadership moves (nothing to
    copy; for the leader count, those shifting the least consumer traffic), then replica
    moves with the most load per byte copied, followers before leaders."""
    keyed: list[tuple[tuple[int, float, int, float], ActionKind, int]] = []
    if resource.leader_only:
        for i in model.led_by(b):
            p = model.partitions[i]
            x = p.load(resource, as_leader=True)
            side = p.bytes_out_per_s if resource is Resource.LEADERS else 0.0
            if x > 0:
                keyed.append(((0, side, 0, -x), ActionKind.LEADERSHIP, i))
    for i in model.iter_hosted(b):
        p = model.partitions[i]
        leads = p.leader == b
        x = p.load(resource, as_leader=leads)
        if x > 0:
            keyed.append(((1, p.size_bytes / x, int(leads), -x), ActionKind.REPLICA, i))
    keyed.sort(key=lambda k: k[0])
    return [(kind, i) for _, kind, i in keyed]


def default_goals(config: GoalConfig | None = None) -> list[Goal]:
    """Hard goals first, then soft goals, most important first.

    Counts come before the weighted resources they constrain (as in Cruise Control's
    order): a count window of 10% leaves the disk and network goals room to move, and
    their swaps leave counts alone; the other way round, disk balanced to the edge of its
    window blocks the many small moves the counts need.
    """
    cfg = config or GoalConfig()
    return [
        RackAwareGoal(),
        CellContainmentGoal(),
        BrokerDrainGoal(),
        CapacityGoal(Resource.DISK, cfg),
        CapacityGoal(Resource.NW_IN, cfg),
        CapacityGoal(Resource.NW_OUT, cfg),
        DistributionGoal(Resource.REPLICAS, cfg),
        DistributionGoal(Resource.DISK, cfg),
        DistributionGoal(Resource.NW_IN, cfg),
        DistributionGoal(Resource.LEADERS, cfg),
        DistributionGoal(Resource.NW_OUT, cfg),
    ]
