"""Hard goal: the replicas of a partition on distinct zones."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from streamplane.loops.balancer.goals.base import Action, ActionKind, Goal, Optimization
from streamplane.loops.balancer.model import ClusterModel, Partition, Resource


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
