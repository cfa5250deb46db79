"""Stopping every controller of a cluster: nodes left without a quorum are not waited on.

A node that is also a broker asks the controller quorum to approve its controlled
shutdown; once most controllers have exited nobody can, and Kafka would wait minutes.
These runners stand in for Kafka nodes: each exits on SIGTERM after a set time, or never
(it waits for an approval that cannot come) until it is killed.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from streamplane.satellite import cluster
from streamplane.satellite.cluster import ClusterWorker


@dataclass
class Node:
    node_id: int
    exits_after: float = math.inf  # never exits on SIGTERM: only killed at the end of its grace
    graces: list[float] = field(default_factory=list)
    killed: bool = False

    async def stop(self, grace: float) -> None:
        self.graces.append(grace)
        if self.exits_after <= grace:
            await asyncio.sleep(self.exits_after)
            return
        await asyncio.sleep(grace)
        self.killed = True


def stop(nodes: list[Node], grace: float) -> None:
    worker = SimpleNamespace(cluster_id="c1")
    asyncio.run(asyncio.wait_for(ClusterWorker._stop_voters(worker, nodes, grace), 30))  # type: ignore[arg-type]


def test_the_node_left_without_a_quorum_is_killed_soon(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster, "QUORUM_LOST_GRACE_S", 0.3)
    nodes = [Node(1, 0.05), Node(2, 0.1), Node(3, math.inf)]
    stop(nodes, grace=60.0)
    assert [n.killed for n in nodes] == [False, False, True]
    # node 3 had its normal grace, then was stopped with none once the quorum was gone
    assert nodes[2].graces == [60.0, 0.0]
    assert nodes[0].graces == [60.0] and nodes[1].graces == [60.0]


def test_nodes_that_finish_with_the_quorum_gone_are_not_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster, "QUORUM_LOST_GRACE_S", 1.0)
    nodes = [Node(1, 0.05), Node(2, 0.1), Node(3, 0.3)]
    stop(nodes, grace=60.0)
    assert not any(n.killed for n in nodes)
    assert all(n.graces == [60.0] for n in nodes)


def test_while_a_majority_runs_every_node_gets_its_whole_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster, "QUORUM_LOST_GRACE_S", 0.3)
    # five controllers: the first two take longer than the quorum-lost grace, but three
    # are up while they stop; the last two finish soon after the quorum went
    nodes = [Node(1, 0.6), Node(2, 0.7), Node(3, 0.8), Node(4, 0.85), Node(5, 0.9)]
    stop(nodes, grace=2.0)
    assert not any(n.killed for n in nodes), [n.graces for n in nodes]


def test_a_single_controller_is_simply_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster, "QUORUM_LOST_GRACE_S", 0.1)
    node = Node(1, 0.2)
    stop([node], grace=5.0)
    assert not node.killed and node.graces == [5.0]
