"""What every goal shares: the numbers they work to (``GoalConfig``), the elementary change
(``Action``), the working model with the vetoes of the goals optimized so far
(``Optimization``) and the ``Goal`` interface; plus two measures the goals have in common."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streamplane.loops.balancer.model import ClusterModel, Resource


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


def load_deltas(model: ClusterModel, change: Sequence[Action], resource: Resource) -> dict[int, float]:
    """Net change of ``resource`` per broker; brokers that end even are left out."""
    deltas: dict[int, float] = defaultdict(float)
    for a in change:
        x = a.amount(model, resource)
        if x:
            deltas[a.source] -= x
            deltas[a.destination] += x
    return {b: d for b, d in deltas.items() if d}


def candidates(model: ClusterModel, b: int, resource: Resource) -> list[tuple[ActionKind, int]]:
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
