"""Stopping is bounded: a cluster, and a satellite with all its clusters, stop within a
stated time even when no node exits on SIGTERM (each waits for a controlled shutdown
that cannot finish, as under heavy load), so `streamplane down` never hangs for minutes.

The nodes here stand in for Kafka processes: each exits on SIGTERM after a set time, or
only when it is killed at the end of the grace it was given.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from streamplane.cli import local
from streamplane.satellite import agent
from streamplane.satellite.agent import Satellite
from streamplane.satellite.cluster import ClusterWorker
from streamplane.tenancy import SYSTEM_CLUSTER_ID

from .test_stop_voters import Node


def worker_of(nodes: list[Node], controllers: set[int]) -> SimpleNamespace:
    """Just enough of a ClusterWorker for ``stop_all``: which nodes are controllers."""
    worker = SimpleNamespace(
        cluster_id="c1", spec=object(), record=object(), runners={n.node_id: n for n in nodes},
        _plan=lambda spec: {n.node_id: SimpleNamespace(is_controller=n.node_id in controllers)
                            for n in nodes},
        _save=lambda: None, _stopped=False)
    worker._stop_voters = functools.partial(ClusterWorker._stop_voters, worker)
    return worker


def test_a_cluster_whose_nodes_never_exit_stops_within_its_grace() -> None:
    nodes = [Node(i) for i in range(1, 7)]  # 3 combined controllers, 3 brokers only
    worker = worker_of(nodes, controllers={1, 2, 3})
    asyncio.run(asyncio.wait_for(ClusterWorker.stop_all(worker, 2.0), 30))  # type: ignore[arg-type]
    assert all(n.killed for n in nodes)
    # brokers first with half the time, then the controllers with what is left of it: the
    # graces handed out add up to the cluster's grace, however slow the machine is (were
    # each phase given the whole grace, stopping would take twice as long)
    assert [n.graces[0] for n in nodes[3:]] == [1.0, 1.0, 1.0]
    voters = {n.graces[0] for n in nodes[:3]}
    assert len(voters) == 1 and voters.pop() <= 1.0, [n.graces for n in nodes[:3]]
    assert worker._stopped


def test_brokers_that_stop_quickly_leave_the_controllers_the_rest_of_the_time() -> None:
    nodes = [Node(1, exits_after=0.5), Node(2, exits_after=0.5), Node(3, exits_after=0.5),
             Node(4, exits_after=0.1)]
    worker = worker_of(nodes, controllers={1, 2, 3})
    asyncio.run(asyncio.wait_for(ClusterWorker.stop_all(worker, 4.0), 30))  # type: ignore[arg-type]
    assert not any(n.killed for n in nodes)
    assert nodes[3].graces == [2.0]
    assert all(n.graces[0] > 3.5 for n in nodes[:3]), [n.graces for n in nodes[:3]]


@dataclass
class FakeWorker:
    cluster_id: str
    graces: list[float] = field(default_factory=list)
    spec: None = None
    record: None = None

    async def stop_all(self, grace: float) -> None:
        self.graces.append(grace)
        await asyncio.sleep(grace)  # nothing exits before it is killed


def test_a_satellite_stops_every_cluster_within_its_budget_system_cluster_last(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent, "STOP_BUDGET_S", 1.5)
    monkeypatch.setattr(agent, "SYSTEM_SHUTDOWN_GRACE_S", 0.5)
    workers = {cid: FakeWorker(cid) for cid in ("pkc-a", "pkc-b", SYSTEM_CLUSTER_ID)}
    satellite = SimpleNamespace(_tasks={}, workers=workers, name="s1", sink=None)
    asyncio.run(asyncio.wait_for(Satellite.shutdown(satellite), 30))  # type: ignore[arg-type]
    # the other clusters stop together, leaving the system cluster its share; what is
    # handed out adds up to the budget, however slow the machine is
    [others] = {w.graces[0] for cid, w in workers.items() if cid != SYSTEM_CLUSTER_ID}
    [system] = workers[SYSTEM_CLUSTER_ID].graces
    assert others <= 1.0 and system <= 0.5 and others + system <= 1.5, (others, system)
    assert others > 0.5, "the other clusters get the budget less the system cluster's share"


def test_down_is_bounded_well_within_a_test_teardown() -> None:
    # every part of `down` has a bound and what outlives it is killed; the sum is what a
    # user waits at worst (the platform tests' teardown allows 300 s)
    assert local.SATELLITE_STOP_TIMEOUT_S > agent.STOP_BUDGET_S
    assert local.DOWN_BUDGET_S <= 60.0, local.DOWN_BUDGET_S
