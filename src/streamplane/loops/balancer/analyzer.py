"""The analyzer: turn a load model into a ``Plan`` by optimizing goals in priority order.

It works on a copy of the model, lets each goal change it through an ``Optimization``
(which checks every earlier goal's veto), then compares the result with the original to
produce one move per partition that changed: a partition moved several times on the way
ends up moved once, from where it is to where it should be. The one deliberate exception:
a partition led by a broker that is being emptied first gets a leadership-only move, so
clients leave that broker before any data is copied.
"""

from __future__ import annotations

from collections.abc import Sequence

from streamplane.loops.balancer.goals import Goal, GoalConfig, Optimization, default_goals
from streamplane.loops.balancer.model import ClusterModel, Partition, human_bytes
from streamplane.loops.balancer.plan import PartitionMove, Plan


class HardGoalError(RuntimeError):
    """A hard goal cannot be met; ``plan`` holds the best effort and ``plan.unmet`` why."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        super().__init__("; ".join(f"{goal}: {why}" for goal, why in plan.unmet.items()))


class InvalidPlanError(RuntimeError):
    """The analyzer produced a move it must never produce (a bug, not a user error)."""


class Analyzer:
    def __init__(self, goals: Sequence[Goal] | None = None, config: GoalConfig | None = None) -> None:
        self.config = config or GoalConfig()
        self.goals = list(goals) if goals is not None else default_goals(self.config)
        names = [g.name for g in self.goals]
        if len(set(names)) != len(names):
            raise ValueError(f"goal names must be unique, got {names}")

    def plan(self, model: ClusterModel, *, strict: bool = False) -> Plan:
        """The fewest moves this analyzer finds that meet the goals.

        With ``strict``, raise ``HardGoalError`` if a hard goal cannot be met; otherwise
        the plan says so in ``unmet`` and still carries the moves that help.
        """
        before = {g.name: g.imbalance(model) for g in self.goals}
        opt = Optimization(model.clone(), self.config)
        for goal in self.goals:
            goal.optimize(opt)
            opt.done.append(goal)
        final = opt.model
        after = {g.name: g.imbalance(final) for g in self.goals}
        unmet = {g.name: why for g in self.goals if g.hard and (why := g.unmet(final))}
        moves = _moves(model, final, opt)
        for move in moves:
            _check(model, move)
        plan = Plan(cluster_id=model.cluster_id, moves=tuple(moves), before=before, after=after,
                    explanation=_explain(moves, before, after, unmet), unmet=unmet)
        if strict and unmet:
            raise HardGoalError(plan)
        return plan


def _moves(initial: ClusterModel, final: ClusterModel, opt: Optimization) -> list[PartitionMove]:
    leaving = {b.id for b in initial.brokers if not b.alive}
    drain_leads: list[PartitionMove] = []
    drain_copies: list[PartitionMove] = []
    leads: list[PartitionMove] = []
    copies: list[PartitionMove] = []
    for i, (old, new) in enumerate(zip(initial.partitions, final.partitions, strict=True)):
        if old.replicas == new.replicas and old.leader == new.leader:
            continue
        reason = "; ".join(dict.fromkeys(opt.reasons.get(i, [])))
        start = old.replicas
        if i in opt.drain_leaders and set(old.replicas) != set(new.replicas):
            first = opt.drain_leaders[i]
            start = (first, *(b for b in old.replicas if b != first))
            drain_leads.append(_move(old, old.replicas, start, f"{reason} (leadership first)"))
        move = _move(old, start, new.replicas, reason)
        if move.added or move.removed:
            (drain_copies if set(old.replicas) & leaving else copies).append(move)
        else:
            (drain_leads if old.leader in leaving else leads).append(move)
    copies.sort(key=lambda m: (m.bytes_to_move, m.topic, m.partition))
    return drain_leads + drain_copies + leads + copies


def _move(p: Partition, old: tuple[int, ...], new: tuple[int, ...], reason: str) -> PartitionMove:
    added = sum(1 for b in new if b not in old)
    return PartitionMove(topic=p.topic, partition=p.partition, old_replicas=old, replicas=new,
                         bytes_to_move=p.size_bytes * added, reason=reason)


def _check(model: ClusterModel, move: PartitionMove) -> None:
    where = f"{move.topic}-{move.partition}: {list(move.old_replicas)} -> {list(move.replicas)}"
    if len(set(move.replicas)) != len(move.replicas):
        raise InvalidPlanError(f"duplicate replica in {where}")
    if len(move.replicas) < len(move.old_replicas):
        raise InvalidPlanError(f"fewer replicas in {where}")
    for b in move.added:
        if not model.broker(b).alive:
            raise InvalidPlanError(f"replica added on broker {b}, which is {model.broker(b).state}, "
                                   f"in {where}")


def _explain(moves: Sequence[PartitionMove], before: dict[str, float], after: dict[str, float],
             unmet: dict[str, str]) -> str:
    if not moves:
        head = "no moves" if unmet else "no moves: every goal is met or within its threshold"
    else:
        lead = sum(1 for m in moves if not m.added)
        copied = sum(m.bytes_to_move for m in moves)
        head = (f"{len(moves)} move(s), {lead} leadership-only and {len(moves) - lead} with data "
                f"({human_bytes(copied)} to copy)")
    changed = [f"{g} {before[g]:.3g} -> {after[g]:.3g}" for g in before
               if abs(before[g] - after[g]) > 1e-9]
    parts = [head]
    if changed:
        parts.append("imbalance: " + ", ".join(changed))
    if unmet:
        parts.append("not met: " + "; ".join(f"{g}: {why}" for g, why in unmet.items()))
    return ". ".join(parts)
