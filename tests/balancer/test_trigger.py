"""The balancing loop's hysteresis: when a self-started execution may run."""

from __future__ import annotations

import pytest

from streamplane.loops.balancer.detector import BalanceSettings, Trigger

SETTINGS = BalanceSettings(trigger_imbalance=0.25, sustain_s=120.0, cooldown_s=300.0)


@pytest.mark.timeout(10)
def test_imbalance_must_stay_above_the_trigger_for_the_sustain_period() -> None:
    t = Trigger(SETTINGS)
    assert t.decide(0.0, 0.40, None) is None  # the clock starts
    assert t.decide(119.0, 0.40, None) is None
    why = t.decide(121.0, 0.40, None)
    assert why is not None and "40%" in why and "25%" in why


@pytest.mark.timeout(10)
def test_a_dip_below_the_trigger_restarts_the_clock() -> None:
    t = Trigger(SETTINGS)
    t.decide(0.0, 0.40, None)
    assert t.decide(100.0, 0.20, None) is None  # back under: the clock stops
    assert t.decide(110.0, 0.40, None) is None  # and starts again here
    assert t.decide(200.0, 0.40, None) is None
    assert t.decide(231.0, 0.40, None) is not None


@pytest.mark.timeout(10)
def test_imbalance_inside_the_band_never_triggers() -> None:
    """The analyzer balances to within 10%; drift up to the 25% trigger is left alone."""
    t = Trigger(SETTINGS)
    assert all(t.decide(float(s), 0.24, None) is None for s in range(0, 3600, 10))


@pytest.mark.timeout(10)
def test_no_self_started_execution_within_the_cooldown_of_the_previous_one() -> None:
    t = Trigger(SETTINGS)
    t.executed(1000.0)
    t.decide(1000.0, 0.50, None)
    assert t.decide(1200.0, 0.50, None) is None  # sustained, but 200 s after the last execution
    assert t.decide(1301.0, 0.50, None) is not None


@pytest.mark.timeout(10)
def test_a_forced_reason_bypasses_sustain_and_cooldown() -> None:
    t = Trigger(SETTINGS)
    t.executed(1000.0)
    assert t.decide(1001.0, 0.0, "brokers 4, 5 are leaving") == "brokers 4, 5 are leaving"
