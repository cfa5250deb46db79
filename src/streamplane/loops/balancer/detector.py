"""When a cluster's balancer executes a plan: the trigger, apart from the loop that acts.

* At once (forced) when an operator asked, when brokers are draining (scale-in, or
  brokers no longer in the PSC), when a hard goal is broken (zone spread, cells), or when
  the PSC changed since the cluster was last balanced (scale-out).
* Otherwise only when a soft goal's imbalance stays above ``trigger_imbalance`` for
  ``sustain_s``, and not within ``cooldown_s`` of the previous execution. The analyzer
  balances to within 10% and aims at 8%, far inside the trigger, so the loop cannot
  thrash between two plans.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streamplane.loops.balancer.executor_state import ExecutorConfig
from streamplane.loops.balancer.plan import Plan

#: the goals that must hold whatever the imbalance; breaking one is reason to move at once
HARD_GOALS = ("rack-aware", "cell-containment", "broker-drain")


@dataclass(frozen=True)
class BalanceSettings:
    interval_s: float = 5.0
    #: the monitor's window for byte rates
    rate_window_s: float = 2.0
    #: a soft goal this far from even starts the clock...
    trigger_imbalance: float = 0.25
    #: ...and the plan runs once it has stayed there this long
    sustain_s: float = 120.0
    #: no self-started execution sooner than this after the previous one ended
    cooldown_s: float = 300.0
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)


def soft_imbalance(plan: Plan) -> float:
    """The largest imbalance among the goals that only wait for the trigger."""
    return max((v for k, v in plan.before.items() if k not in HARD_GOALS and "capacity" not in k),
               default=0.0)


def forced_reason(plan: Plan, draining: list[int], requested: str | None, generation: int,
                  balanced_generation: int | None) -> str | None:
    """Why ``plan`` must run now, whatever the hysteresis says; None when nothing forces it."""
    if requested:
        return requested
    if draining and plan.before.get("broker-drain", 0) > 0:
        return f"broker(s) {', '.join(map(str, draining))} are leaving the cluster"
    broken = [g for g in HARD_GOALS if plan.before.get(g, 0) > 0]
    if broken:
        return f"hard goal(s) {', '.join(broken)} not met"
    if balanced_generation != generation:
        return f"the cluster changed (generation {generation}) since it was last balanced"
    return None


class Trigger:
    """Hysteresis for self-started executions (forced ones bypass it)."""

    def __init__(self, settings: BalanceSettings) -> None:
        self.settings = settings
        self.above_since: float | None = None
        self.last_execution_end: float | None = None

    def decide(self, now: float, soft_imbalance: float, forced: str | None) -> str | None:
        """Why to execute now, or None to wait."""
        if forced:
            return forced
        s = self.settings
        if soft_imbalance <= s.trigger_imbalance:
            self.above_since = None
            return None
        if self.above_since is None:
            self.above_since = now
        if now - self.above_since < s.sustain_s:
            return None
        if self.last_execution_end is not None and now - self.last_execution_end < s.cooldown_s:
            return None
        return (f"imbalance {soft_imbalance:.0%} has stayed above {s.trigger_imbalance:.0%} "
                f"for {now - self.above_since:.0f} s")

    def executed(self, now: float) -> None:
        self.last_execution_end = now
        self.above_since = None
