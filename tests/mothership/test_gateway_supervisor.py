"""The mothership's gateway supervision with real gateway processes and a real store, but
no Kafka: a gateway listens (and answers ApiVersions) before it ever talks to a broker.

What only a whole platform shows (clients through the gateway, restarts under load,
``streamplane down``) is in test_gateway_tenants.py.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from streamplane.models.status import ClusterState, ClusterStatus
from streamplane.mothership.gateways import (
    GATEWAY_MODULE,
    GatewaySupervisor,
    gateways_dir,
    stop_gateways,
)
from streamplane.mothership.store import PhysicalClusterKind, Store
from streamplane.mothership.store.testing import sample_psc
from streamplane.testing import wait_for

pytestmark = pytest.mark.timeout(120)
START_TIMEOUT_S = 60.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.in_data_dir(tmp_path / "mothership") as s:
        s.migrate()
        s.satellites.upsert("sat-a", zone="zone-a", capacity={})
        yield s
    stop_gateways(tmp_path / "mothership")  # whatever a failed test left running


def shared_cluster(store: Store, cluster_id: str, state: ClusterState, upstream: str = "127.0.0.1:1") -> None:
    pc = store.physical_clusters.create(sample_psc(cluster_id, password="a-long-enough-pw"),
                                        kind=PhysicalClusterKind.SHARED)
    store.physical_clusters.record_status(pc.id, ClusterStatus(
        id=pc.id, satellite="sat-a", status=state, generation=1, observed_generation=1,
        kafka_version=pc.spec.kafka_version, bootstrap=upstream))


def listening(bootstrap: str) -> bool:
    host, port = bootstrap.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def cycle_until(supervisor: GatewaySupervisor, what: str, done: Callable[[], object]) -> None:
    wait_for(lambda: (supervisor.run_cycle(), done())[1], START_TIMEOUT_S, what, interval=0.3)


def test_a_gateway_per_healthy_shared_cluster_restarted_adopted_and_stopped(
    store: Store, tmp_path: Path,
) -> None:
    root = tmp_path / "mothership"
    shared_cluster(store, "pkc-ready1", ClusterState.HEALTHY)
    shared_cluster(store, "pkc-young1", ClusterState.STARTING)
    supervisor = GatewaySupervisor(store, root)

    cycle_until(supervisor, "the gateway to listen", lambda: supervisor.bootstrap("pkc-ready1"))
    bootstrap = supervisor.bootstrap("pkc-ready1")
    assert bootstrap is not None and listening(bootstrap)
    assert supervisor.bootstrap("pkc-young1") is None  # no gateway before the cluster is healthy
    assert not (gateways_dir(root) / "pkc-young1").exists()
    first = supervisor.pid("pkc-ready1")
    assert first is not None

    # killed: restarted, on the same address
    os.kill(first, signal.SIGKILL)
    cycle_until(supervisor, "a new gateway process", lambda: supervisor.pid("pkc-ready1") not in (None, first)
                and listening(bootstrap))
    assert supervisor.bootstrap("pkc-ready1") == bootstrap
    second = supervisor.pid("pkc-ready1")
    assert second is not None

    # a new mothership (a new supervisor) knows the address at once and adopts the process
    again = GatewaySupervisor(store, root)
    assert again.bootstrap("pkc-ready1") == bootstrap
    said = again.run_cycle()
    assert f"adopted the gateway of pkc-ready1 (pid {second})" in said
    for _ in range(3):
        again.run_cycle()
    gateways = [p for p in psutil.process_iter(["cmdline"])
                if GATEWAY_MODULE in (p.info["cmdline"] or [])
                and any(str(root) in part for part in p.info["cmdline"])]
    assert [p.pid for p in gateways] == [second]

    # the cluster is being deleted: its gateway stops and its files go
    store.physical_clusters.mark_deleting("pkc-ready1")
    assert "stopped the gateway of pkc-ready1" in again.run_cycle()
    assert not psutil.pid_exists(second) or psutil.Process(second).status() == psutil.STATUS_ZOMBIE
    assert again.bootstrap("pkc-ready1") is None
    assert not (gateways_dir(root) / "pkc-ready1").exists()


def test_down_stops_gateways_the_mothership_left_running(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "mothership"
    shared_cluster(store, "pkc-alone1", ClusterState.HEALTHY)
    supervisor = GatewaySupervisor(store, root)
    cycle_until(supervisor, "the gateway to listen", lambda: supervisor.bootstrap("pkc-alone1"))
    pid = supervisor.pid("pkc-alone1")
    assert pid is not None
    [said] = stop_gateways(root)
    assert said.startswith(f"stopped gateway process {pid} ")
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert stop_gateways(root) == []


def test_a_taken_bootstrap_port_gives_the_gateway_another(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "mothership"
    shared_cluster(store, "pkc-moved1", ClusterState.HEALTHY)
    supervisor = GatewaySupervisor(store, root)
    cycle_until(supervisor, "the gateway to listen", lambda: supervisor.bootstrap("pkc-moved1"))
    old = supervisor.bootstrap("pkc-moved1")
    pid = supervisor.pid("pkc-moved1")
    assert old is not None and pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not listening(old), 10, "the old gateway to be gone")
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", int(old.rsplit(":", 1)[1])))
    squatter.listen(1)
    try:
        cycle_until(supervisor, "the gateway on a new port",
                    lambda: supervisor.bootstrap("pkc-moved1") not in (None, old))
        new = supervisor.bootstrap("pkc-moved1")
        assert new is not None and listening(new)
    finally:
        squatter.close()
