"""Soft goals: one resource evened out across the live brokers of a cell (or zone)."""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence

from streamplane.loops.balancer.goals.base import (
    Action,
    ActionKind,
    Goal,
    GoalConfig,
    Optimization,
    candidates,
    load_deltas,
)
from streamplane.loops.balancer.model import ClusterModel, Partition, Resource

#: replica-swap partners tried per broker, and swap pairs per partner, before giving up
_SWAP_PARTNERS = 6
_SWAP_ATTEMPTS = 60
_EDGE = 1e-9


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
            hit = (version, candidates(opt.model, b, self.resource))
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
        deltas = load_deltas(model, change, self.resource)
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
