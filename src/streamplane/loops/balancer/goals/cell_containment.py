"""Hard goal: a tenant's replicas stay inside its cell."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from streamplane.loops.balancer.goals.base import Action, ActionKind, Goal, Optimization
from streamplane.loops.balancer.model import ClusterModel, Partition, Resource


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
