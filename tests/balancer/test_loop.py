"""The balancing loop against a fake source, without Kafka: what it waits for, when it
ends, how it shows a failed look, how the service follows the clusters the source names,
and the detector's reasons to execute at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from streamplane.loops.balancer.detector import BalanceSettings, forced_reason, soft_imbalance
from streamplane.loops.balancer.loop import BalanceTarget, BalancingService, ClusterBalancer, ClusterGone
from streamplane.loops.balancer.plan import Plan
from streamplane.models.status import ClusterState, ClusterStatus

FAST = BalanceSettings(interval_s=0.01)


def target(cluster_id: str = "pkc-1", generation: int = 2) -> BalanceTarget:
    return BalanceTarget(cluster_id=cluster_id, generation=generation, satellite="sat-a", deleting=False,
                         brokers=frozenset({1, 2, 3}), leaving=frozenset(), tenant_cells={},
                         untenanted_cell=None, username="admin", password="secret")


class FakeSource:
    def __init__(self, *targets: BalanceTarget) -> None:
        self.targets = {t.cluster_id: t for t in targets}
        self.statuses: dict[str, ClusterStatus] = {}
        self.failing: Exception | None = None

    def cluster_ids(self) -> list[str]:
        return sorted(self.targets)

    def target(self, cluster_id: str) -> BalanceTarget:
        if self.failing is not None:
            raise self.failing
        if cluster_id not in self.targets:
            raise ClusterGone(cluster_id)
        return self.targets[cluster_id]

    def status(self, t: BalanceTarget) -> ClusterStatus | None:
        return self.statuses.get(t.cluster_id)


def status(state: ClusterState, observed: int) -> ClusterStatus:
    return ClusterStatus(id="pkc-1", satellite="sat-a", status=state, generation=2,
                         observed_generation=observed, kafka_version="4.3.1", bootstrap="127.0.0.1:1")


def test_waits_for_a_healthy_cluster_at_the_current_generation(tmp_path: Path) -> None:
    source = FakeSource(target())
    balancer = ClusterBalancer("pkc-1", source, tmp_path, FAST)
    for st, message in ((None, "waiting for the cluster to be healthy"),
                        (status(ClusterState.DEGRADED, 2), "waiting for the cluster to be healthy"),
                        (status(ClusterState.HEALTHY, 1), "waiting for satellite sat-a to apply generation 2")):
        if st is None:
            source.statuses.clear()
        else:
            source.statuses["pkc-1"] = st
        assert asyncio.run(balancer.cycle()) == ""
        assert (balancer.status.state, balancer.status.message) == ("waiting", message)


def test_a_failed_look_is_shown_and_the_loop_ends_once_the_cluster_is_gone(tmp_path: Path) -> None:
    source = FakeSource(target())
    source.failing = OSError("store unavailable")
    balancer = ClusterBalancer("pkc-1", source, tmp_path, FAST)

    async def main() -> None:
        task = asyncio.create_task(balancer.run(asyncio.Event()))
        async with asyncio.timeout(5):
            while "store unavailable" not in balancer.status.message:
                await asyncio.sleep(0.01)
        source.failing = None
        source.targets.clear()
        await asyncio.wait_for(task, 5)  # ends by itself: the cluster is gone

    asyncio.run(main())
    assert balancer.status.message == "could not look at the cluster: OSError: store unavailable"


def test_the_service_keeps_one_balancer_per_cluster_the_source_names(tmp_path: Path) -> None:
    source = FakeSource(target("pkc-1"), target("pkc-2"))
    service = BalancingService(source, tmp_path / "balancer", FAST)

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        async with asyncio.timeout(5):
            while set(service.balancers) != {"pkc-1", "pkc-2"}:
                await asyncio.sleep(0.01)
            assert service.act("pkc-1", "rebalance")
            assert not service.act("pkc-1", "cancel"), "nothing is executing"
            del source.targets["pkc-2"]
            while set(service.balancers) != {"pkc-1"}:
                await asyncio.sleep(0.01)
        st = service.status("pkc-1")
        assert st is not None and st.state == "waiting"
        assert service.status("pkc-2") is None
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(main())


def plan(before: dict[str, float]) -> Plan:
    return Plan.model_validate({"cluster_id": "pkc-1", "before": before, "after": before, "moves": []})


def test_reasons_to_execute_at_once_in_order_of_precedence() -> None:
    drained = plan({"broker-drain": 4.0, "rack-aware": 1.0})
    assert forced_reason(drained, [5], "an operator asked", 3, 3) == "an operator asked"
    assert forced_reason(drained, [4, 5], None, 3, 3) == "broker(s) 4, 5 are leaving the cluster"
    assert forced_reason(plan({"rack-aware": 1.0, "cell-containment": 2.0}), [], None, 3, 3) == \
        "hard goal(s) rack-aware, cell-containment not met"
    assert forced_reason(plan({"disk-distribution": 0.5}), [], None, 4, 3) == \
        "the cluster changed (generation 4) since it was last balanced"
    assert forced_reason(plan({"disk-distribution": 0.5}), [], None, 3, 3) is None


def test_the_soft_imbalance_leaves_out_hard_and_capacity_goals() -> None:
    assert soft_imbalance(plan({"rack-aware": 3.0, "disk-capacity": 2.0, "disk-distribution": 0.3,
                                "leaders-distribution": 0.1})) == 0.3
    assert soft_imbalance(plan({})) == 0.0
