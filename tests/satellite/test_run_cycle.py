"""``ClusterWorker.run_cycle`` with a fake Kafka: what one reconcile step does and says.

The fake (``fake_kafka.py``) stands in for the Kafka processes and the admin protocol; the
worker, its state file and its status are real. A cycle's sentence is what the satellite
logs, so the tests read it as a user would.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import SecretStr

from streamplane.credentials.cluster_ca import CertificateAuthority
from streamplane.models.psc import ClusterTls, PhysicalClusterSpec
from streamplane.models.status import ClusterState, ClusterStatus, NodeState
from streamplane.satellite import cluster
from streamplane.satellite.cluster import ClusterWorker
from streamplane.satellite.layout import ClusterLayout
from streamplane.satellite.ports import PortAllocator

from .conftest import three_broker_spec
from .fake_kafka import Clock, FakeHost, FakeKafka


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(cluster, "time", fake)
    return fake


@pytest.fixture
def host(clock: Clock) -> FakeHost:
    return FakeHost(clock)


def worker_for(host: FakeHost, root: Path, psc: PhysicalClusterSpec | None = None) -> ClusterWorker:
    worker = ClusterWorker("trio", ClusterLayout(root / "trio"), "sat-1", FakeKafka(host), PortAllocator())
    if psc is not None:
        worker.offer(psc)
    return worker


def cycle(worker: ClusterWorker) -> str:
    return asyncio.run(worker.run_cycle())


def broker(status: ClusterStatus, node_id: int) -> object:
    return next(b for b in status.brokers if b.id == node_id)


def four_brokers(generation: int = 1) -> PhysicalClusterSpec:
    spec = three_broker_spec().model_dump(mode="json", context={"reveal_secrets": True})
    spec["brokers"].append({"id": 4, "zone": "zone-a"})
    spec["generation"] = generation
    return PhysicalClusterSpec.model_validate(spec)


def test_the_first_cycle_formats_and_starts_every_node_and_converges(host: FakeHost, tmp_path: Path) -> None:
    psc = three_broker_spec()
    worker = worker_for(host, tmp_path, psc)
    said = cycle(worker)
    assert said.startswith("cluster trio: formatted storage of node(s) 1, 2, 3; started node(s) 1, 2, 3")
    assert f"created SCRAM-SHA-512 super-user {psc.super_user.name}" in said
    assert said.endswith("converged to generation 1")
    assert host.formats == [1, 2, 3] and host.running() == [1, 2, 3]
    st = worker.status()
    assert st.status == ClusterState.HEALTHY and st.observed_generation == 1
    assert [(b.id, b.state, b.registered) for b in st.brokers] == [
        (1, NodeState.RUNNING, True), (2, NodeState.RUNNING, True), (3, NodeState.RUNNING, True)]
    assert st.bootstrap == ",".join(f"127.0.0.1:{b.port}" for b in st.brokers)
    # a steady cluster: nothing is formatted or started again, and the sentence says so
    assert cycle(worker) == "cluster trio: healthy, 3 broker(s), quorum leader 1"
    assert host.formats == [1, 2, 3] and host.starts == [1, 2, 3]
    assert host.super_users == [psc.super_user.name]


def test_a_node_that_exited_is_restarted_with_backoff_and_counted(
        host: FakeHost, clock: Clock, tmp_path: Path) -> None:
    worker = worker_for(host, tmp_path, three_broker_spec())
    cycle(worker)
    pid = host.kill(2, code=137)
    said = cycle(worker)
    assert f"node 2 (pid {pid}) died (exit code 137); restarting in 1s" in said
    st = worker.status()
    assert st.status == ClusterState.DEGRADED
    node = st.brokers[1]
    assert (node.state, node.restarts, node.last_exit_code, node.pid) == (NodeState.RESTARTING, 1, 137, None)
    clock.now += 0.5
    assert "started" not in cycle(worker), "restarted before its backoff was over"
    clock.now += 0.6
    assert "started node(s) 2" in cycle(worker)
    assert host.running() == [1, 2, 3]
    # it dies again at once: the wait doubles
    host.kill(2, code=1)
    assert "restarting in 2s" in cycle(worker)
    clock.now += 2.1
    cycle(worker)
    st = worker.status()
    assert st.status == ClusterState.HEALTHY
    assert (st.brokers[1].restarts, st.brokers[1].last_exit_code) == (2, 1)
    assert host.starts == [1, 2, 3, 2, 2]


def test_a_node_up_for_a_minute_is_restarted_after_the_first_delay_again(
        host: FakeHost, clock: Clock, tmp_path: Path) -> None:
    worker = worker_for(host, tmp_path, three_broker_spec())
    cycle(worker)
    for wait in (1, 2, 4):
        host.kill(3, code=1)
        assert f"restarting in {wait}s" in cycle(worker)
        clock.now += wait + 0.1
        cycle(worker)
    clock.now += 61
    cycle(worker)
    host.kill(3, code=1)
    assert "restarting in 1s" in cycle(worker)


def test_a_restarted_satellite_adopts_its_nodes_and_starts_none_twice(host: FakeHost, tmp_path: Path) -> None:
    cycle(worker_for(host, tmp_path, three_broker_spec()))
    pids = sorted(host.processes)
    again = worker_for(host, tmp_path)  # a new satellite reads the spec it had accepted
    said = cycle(again)
    assert said == "cluster trio: healthy, 3 broker(s), quorum leader 1"
    assert host.starts == [1, 2, 3] and host.formats == [1, 2, 3]
    assert sorted(b.pid for b in again.status().brokers) == pids


def test_a_removed_broker_is_stopped_only_once_it_holds_no_replica(host: FakeHost, tmp_path: Path) -> None:
    psc = four_brokers()
    worker = worker_for(host, tmp_path, psc)
    cycle(worker)
    assert host.running() == [1, 2, 3, 4]
    worker.layout.log_dir(4).mkdir(parents=True)  # its data (the fake writes none)
    smaller = psc.model_copy(update={"generation": 2, "brokers": psc.brokers[:3]})
    assert worker.offer(smaller) == "updated trio generation 2"
    host.replicas[4] = 5
    said = cycle(worker)
    assert "waiting for node(s) 4 (5 replicas) to be drained before removing them" in said
    assert host.running() == [1, 2, 3, 4] and host.stops == []
    assert worker.layout.log_dir(4).exists()
    host.replicas[4] = 0
    said = cycle(worker)
    assert "removed node(s) 4" in said and "unregistered broker(s) 4" in said
    assert host.stops == [4] and host.unregistered == [4] and host.running() == [1, 2, 3]
    assert not worker.layout.node_dir(4).exists()
    st = worker.status()
    assert [b.id for b in st.brokers] == [1, 2, 3] and st.observed_generation == 2


def test_deleting_a_cluster_stops_every_node_brokers_first_and_removes_its_data(
        host: FakeHost, tmp_path: Path) -> None:
    worker = worker_for(host, tmp_path, four_brokers())
    cycle(worker)
    assert worker.layout.state_file.exists()
    worker.remove_requested = True
    assert worker.status().status == ClusterState.STOPPING
    assert cycle(worker) == "cluster trio: stopped and deleted its data"
    assert host.running() == []
    assert host.stops[0] == 4 and sorted(host.stops[1:]) == [1, 2, 3]
    assert not worker.layout.root.exists()
    assert worker.deleted and worker.status().status == ClusterState.DELETED


def test_a_new_configuration_restarts_one_node_at_a_time(host: FakeHost, tmp_path: Path) -> None:
    psc = three_broker_spec()
    worker = worker_for(host, tmp_path, psc)
    cycle(worker)
    changed = psc.model_copy(update={"generation": 2,
                                     "broker_configs": {**psc.broker_configs, "num.io.threads": "4"}})
    worker.offer(changed)
    restarted = []
    for _ in range(10):
        said = cycle(worker).removeprefix("cluster trio: ")
        if "converged to generation 2" in said:
            break
        restarted += [int(s.split()[2]) for s in said.split("; ") if s.startswith("restarting node")]
    else:
        pytest.fail("the cluster never converged to generation 2")
    assert restarted == [1, 2, 3]
    assert host.starts == [1, 2, 3, 1, 2, 3]
    assert worker.status().status == ClusterState.HEALTHY


def test_a_kafka_version_that_is_not_installed_fails_the_cluster_and_says_why(
        host: FakeHost, tmp_path: Path) -> None:
    psc = three_broker_spec()
    host.missing_version = psc.kafka_version
    worker = worker_for(host, tmp_path, psc)
    said = cycle(worker)
    assert said == f"cluster trio cannot start: Kafka {psc.kafka_version} is not installed"
    st = worker.status()
    assert st.status == ClusterState.PENDING or st.status == ClusterState.FAILED
    assert st.last_error == f"Kafka {psc.kafka_version} is not installed"
    assert host.starts == []


# ---- a cluster over several satellites -------------------------------------------------

ZONE_HOSTS = {"sat-a": "10.9.0.11", "sat-b": "10.9.0.12", "sat-c": "10.9.0.13"}
BASE = three_broker_spec()


def spread_spec(controller_ports: dict[int, int] | None = None, generation: int = 1) -> PhysicalClusterSpec:
    """Three brokers (controllers too) on three satellites; sat-a coordinates."""
    spec = BASE.model_dump(mode="json", context={"reveal_secrets": True})
    spec["satellite"] = "sat-a"
    spec["kafka_cluster_id"] = "MkU3OEVBNTcwNTJENDM2Qg"
    spec["generation"] = generation
    for b, (sat, address) in zip(spec["brokers"], ZONE_HOSTS.items(), strict=True):
        b.update(satellite=sat, host=address, zone=f"zone-{sat[-1]}")
        if controller_ports:
            b["controller_port"] = controller_ports[b["id"]]
    return PhysicalClusterSpec.model_validate(spec)


def test_satellites_of_a_spread_cluster_each_run_their_own_node_and_share_the_cluster_wide_work(
        host: FakeHost, tmp_path: Path) -> None:
    workers = {sat: ClusterWorker("trio", ClusterLayout(tmp_path / sat / "trio"), sat,
                                  FakeKafka(host), PortAllocator()) for sat in ZONE_HOSTS}
    for w in workers.values():
        w.offer(spread_spec())
    # the voters' ports are chosen by their satellites: nobody can start before it knows them
    said = cycle(workers["sat-b"])
    assert said == "cluster trio: waiting for the controller port of node(s) 1, 3 from their satellites"
    cycle(workers["sat-a"])
    cycle(workers["sat-c"])
    assert host.starts == []
    ports = {}
    for sat, w in workers.items():
        (node,) = w.status().brokers
        assert node.satellite == sat and node.host == ZONE_HOSTS[sat] and node.controller_port
        ports[node.id] = node.controller_port
    pinned = spread_spec(ports, generation=2)  # as the mothership pins them
    for w in workers.values():
        assert w.offer(pinned) == "updated trio generation 2"
    said = cycle(workers["sat-b"])
    assert "waiting for satellite sat-a to create the super-user" in said
    assert host.starts == [2] and host.super_users == []
    expected = {i: (ZONE_HOSTS[f"sat-{'abc'[i - 1]}"], ports[i]) for i in (1, 2, 3)}
    assert host.voters[2] == expected
    cycle(workers["sat-c"])
    said = cycle(workers["sat-a"])
    assert "created SCRAM-SHA-512 super-user streamplane-admin" in said
    for sat in ("sat-b", "sat-c"):
        assert "super-user streamplane-admin logs in on this satellite's brokers" in cycle(workers[sat])
    assert host.super_users == ["streamplane-admin"]  # created once, by the coordinator
    assert sorted(host.starts) == [1, 2, 3] and host.formats.count(2) == 1
    for sat, w in workers.items():
        cycle(w)
        st = w.status()
        assert st.status == ClusterState.HEALTHY and st.observed_generation == 2, sat
        assert [b.id for b in st.brokers] == [int(ZONE_HOSTS[sat][-1])]


def test_only_the_coordinating_satellite_unregisters_a_removed_broker_once_kafka_lets_it_go(
        host: FakeHost, tmp_path: Path) -> None:
    ports = {1: 21001, 2: 21002, 3: 21003}
    spec = spread_spec(ports).model_dump(mode="json", context={"reveal_secrets": True})
    spec["brokers"].append({"id": 4, "zone": "zone-b", "satellite": "sat-b", "host": ZONE_HOSTS["sat-b"]})
    spec["controllers"] = {"mode": "combined", "count": 3}
    four = PhysicalClusterSpec.model_validate(spec)
    workers = {sat: ClusterWorker("trio", ClusterLayout(tmp_path / sat / "trio"), sat,
                                  FakeKafka(host), PortAllocator()) for sat in ZONE_HOSTS}
    for w in workers.values():
        w.offer(four)
    for _ in range(2):
        for w in workers.values():
            cycle(w)
    assert sorted(host.running()) == [1, 2, 3, 4]
    three = spread_spec(ports, generation=2)
    for w in workers.values():
        w.offer(three)
    said = cycle(workers["sat-a"])  # broker 4 still runs on sat-b: Kafka counts it alive
    assert "unregistered" not in said and host.unregistered == []
    assert "removed node(s) 4" in cycle(workers["sat-b"])
    cycle(workers["sat-b"])
    assert host.unregistered == []  # sat-b does not coordinate
    assert "unregistered broker(s) 4" in cycle(workers["sat-a"]) + cycle(workers["sat-a"])
    assert host.unregistered == [4]


def test_tls_of_a_running_cluster_cannot_be_switched(host: FakeHost, tmp_path: Path) -> None:
    ca = CertificateAuthority.new("trio")
    worker = worker_for(host, tmp_path, BASE)
    cycle(worker)
    with_tls = BASE.model_copy(update={"generation": 2, "tls": ClusterTls(
        ca_cert=ca.cert_pem, ca_key=SecretStr(ca.key_pem))})
    assert worker.offer(with_tls) == ("refused trio generation 2: TLS between the hosts of a running "
                                      "cluster cannot be turned on, off or to another CA yet")
    assert worker.spec == BASE
