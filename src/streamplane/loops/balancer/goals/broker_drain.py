"""Hard goal: nothing left on excluded, draining or dead brokers."""

from __future__ import annotations

from collections.abc import Sequence

from streamplane.loops.balancer.goals.base import Action, ActionKind, Goal, Optimization
from streamplane.loops.balancer.model import ClusterModel, Resource


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
