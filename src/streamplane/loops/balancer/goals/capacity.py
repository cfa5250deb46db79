"""Hard goal: every live broker under a share of its disk and network capacity."""

from __future__ import annotations

import math
from collections.abc import Sequence

from streamplane.loops.balancer.goals.base import (
    Action,
    ActionKind,
    Goal,
    GoalConfig,
    Optimization,
    candidates,
    load_deltas,
)
from streamplane.loops.balancer.model import ClusterModel, Resource


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
            for kind, i in candidates(m, b, self.resource):
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
        for b, delta in load_deltas(model, change, self.resource).items():
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
