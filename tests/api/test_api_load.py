"""The routes that read a dedicated cluster's load model, with the model read replaced by a
fake: the load and rebalance routes await it, the scale check (a sync route) has it run on
the server's event loop; what the model says decides the answer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from streamplane.loops.balancer.model import Broker, ClusterModel, Partition
from streamplane.models.status import ClusterState, ClusterStatus, NodeState, NodeStatus
from streamplane.mothership.api import load
from streamplane.mothership.store import LogicalClusterStatus, PhysicalCluster, PhysicalClusterKind
from streamplane.mothership.store.testing import sample_psc

from .conftest import App, error_message

BOOTSTRAP = "127.0.0.1:1"
ModelFor = Callable[[PhysicalCluster], ClusterModel]


def _running_dedicated(app: App, name: str, cku: int) -> None:
    """A dedicated cluster the store says runs, with a status that names its brokers."""
    lc = app.client.post("/v1/clusters", json={"name": name, "type": "dedicated", "cku": cku}).json()["cluster"]
    app.store.satellites.upsert("sat-a", zone="zone-a", capacity={})
    pc = app.store.physical_clusters.create(sample_psc(f"pkc-{name}", password="super-secret"),
                                            kind=PhysicalClusterKind.DEDICATED)
    app.store.physical_clusters.record_status(pc.id, ClusterStatus(
        id=pc.id, satellite=pc.satellite, status=ClusterState.HEALTHY, generation=pc.generation,
        observed_generation=pc.generation, kafka_version="4.3.1", bootstrap=BOOTSTRAP,
        brokers=[NodeStatus(id=b.id, roles=["broker"], state=NodeState.RUNNING, host="127.0.0.1", port=1,
                            metrics_port=2) for b in pc.spec.brokers]))
    app.store.logical_clusters.set_status(lc["id"], LogicalClusterStatus.RUNNING, physical_cluster_id=pc.id,
                                          bootstrap=BOOTSTRAP)


@pytest.fixture
def model_reads(monkeypatch: pytest.MonkeyPatch) -> Callable[[ModelFor | Exception], list[float]]:
    """Replace the model read by ``answer`` (a model per physical cluster, or an error to
    raise); returns the rate windows asked for."""

    def install(answer: ModelFor | Exception) -> list[float]:
        windows: list[float] = []

        async def fake(store: Any, pc: PhysicalCluster, status: ClusterStatus, rate_window_s: float) -> ClusterModel:
            asyncio.get_running_loop()  # an event loop runs it: never a loop of its own per request
            assert status.bootstrap == BOOTSTRAP
            windows.append(rate_window_s)
            if isinstance(answer, Exception):
                raise answer
            return answer(pc)

        monkeypatch.setattr(load, "cluster_model", fake)
        return windows

    return install


def _model(pc: PhysicalCluster, replication_factor: int) -> ClusterModel:
    brokers = [Broker(id=b.id, zone=b.zone) for b in pc.spec.brokers]
    replicas = tuple(b.id for b in brokers[:replication_factor])
    return ClusterModel(cluster_id=pc.id, brokers=brokers, partitions=[
        Partition(topic="orders", partition=i, replicas=replicas, leader=replicas[0]) for i in range(3)])


def test_a_cluster_whose_kafka_does_not_answer_is_unreachable(app: App, model_reads: Any) -> None:
    _running_dedicated(app, "gone", cku=2)
    windows = model_reads(OSError("connection refused"))
    for r in (app.client.get("/v1/clusters/gone/load"),
              app.client.post("/v1/clusters/gone/rebalance", json={"dry_run": True}),
              app.client.patch("/v1/clusters/gone", json={"cku": 1})):
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "cluster_unreachable"
        assert "cannot read the load of cluster gone: connection refused" in error_message(r)
    assert windows == [load.LOAD_RATE_WINDOW_S, load.LOAD_RATE_WINDOW_S, 0.0]
    assert app.client.get("/v1/clusters/gone").json()["cku"] == 2  # the refused scale-in changed nothing


def test_load_and_a_dry_run_show_the_model(app: App, model_reads: Any) -> None:
    _running_dedicated(app, "big", cku=1)
    model_reads(lambda pc: _model(pc, replication_factor=2))
    r = app.client.get("/v1/clusters/big/load")
    assert r.status_code == 200, r.text
    assert [b["id"] for b in r.json()["brokers"]] == [0, 1]
    assert r.json()["partitions"] == 3 and r.json()["imbalance"]
    r = app.client.post("/v1/clusters/big/rebalance", json={"dry_run": True})
    assert r.status_code == 200 and r.json()["dry_run"] is True and "moves" in r.json()["plan"]
    r = app.client.post("/v1/clusters/big/rebalance", json={})
    assert r.status_code == 409 and "no balancer yet" in error_message(r)


def test_a_scale_in_that_leaves_too_few_brokers_is_refused(app: App, model_reads: Any) -> None:
    _running_dedicated(app, "wide", cku=2)
    model_reads(lambda pc: ClusterModel(cluster_id=pc.id, brokers=[Broker(id=i, zone="zone-a") for i in range(4)],
                                        partitions=[Partition(topic="wide", partition=0, replicas=(0, 1, 2, 3),
                                                              leader=0)]))
    r = app.client.patch("/v1/clusters/wide", json={"cku": 1})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "insufficient_capacity"
    assert "topic wide has 4 replicas" in error_message(r)
    assert app.client.get("/v1/clusters/wide").json()["cku"] == 2
