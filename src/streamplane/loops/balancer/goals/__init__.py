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

from streamplane.loops.balancer.goals.base import Action, ActionKind, Goal, GoalConfig, Optimization
from streamplane.loops.balancer.goals.broker_drain import BrokerDrainGoal
from streamplane.loops.balancer.goals.capacity import CapacityGoal
from streamplane.loops.balancer.goals.cell_containment import CellContainmentGoal
from streamplane.loops.balancer.goals.distribution import DistributionGoal
from streamplane.loops.balancer.goals.rack_aware import RackAwareGoal
from streamplane.loops.balancer.model import Resource

__all__ = [
    "Action",
    "ActionKind",
    "BrokerDrainGoal",
    "CapacityGoal",
    "CellContainmentGoal",
    "DistributionGoal",
    "Goal",
    "GoalConfig",
    "Optimization",
    "RackAwareGoal",
    "default_goals",
]


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
