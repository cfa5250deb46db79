"""Adding, updating and removing clusters on a running satellite; unreadable specs."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid

import psutil
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from streamplane.cli.local import LocalDeployment
from streamplane.models.psc import BrokerSpec, PhysicalClusterSpec
from streamplane.models.status import ClusterState
from streamplane.satellite.kafka.probe import ClusterProbe
from streamplane.testing import wait_for

from .conftest import RunningCluster

SOLO_PASSWORD = "solo-" + secrets.token_hex(8)


def solo_spec(generation: int = 1, retention_hours: str = "24",
              password: str = SOLO_PASSWORD) -> PhysicalClusterSpec:
    return PhysicalClusterSpec.model_validate({
        "id": "solo", "generation": generation, "brokers": [{"id": 7, "zone": "zone-a"}],
        "broker_configs": {"log.retention.hours": retention_hours},
        "jvm": {"heap_mb": 256},
        "super_user": {"password": password},
    })


def test_unreadable_desired_state_is_reported_and_creates_nothing(trio: RunningCluster) -> None:
    layout = trio.local.layout
    broken = layout.desired_dir / "broken.json"
    broken.write_text(json.dumps({"id": "broken", "brokers": [], "super_user": {"password": "x"}}))
    try:
        def reported() -> str | None:
            beat = trio.local.heartbeat() or {}
            errors = beat.get("source_errors") or {}
            return errors.get("broken") if isinstance(errors, dict) else None

        message = wait_for(reported, 20, "the satellite to report the broken spec")
        assert "at least one broker" in message
        assert not layout.cluster("broken").root.exists()
        assert trio.local.status("broken") is None
        assert trio.status().status == ClusterState.HEALTHY
    finally:
        broken.unlink()


def test_a_second_cluster_is_added_updated_and_removed_without_touching_the_first(
    trio: RunningCluster,
) -> None:
    trio_pids = {b.id: b.pid for b in trio.status().brokers}
    local = trio.local
    solo = RunningCluster(local, solo_spec())
    local.source.submit(solo.psc)
    first = solo.wait_healthy()
    [broker] = first.brokers
    assert broker.id == 7 and broker.pid

    # generation 2 changes a broker config: the satellite restarts the broker to apply it
    solo.psc = solo_spec(generation=2, retention_hours="48")
    local.source.submit(solo.psc)
    second = solo.wait_healthy(since=time.time())
    assert second.observed_generation == 2
    assert second.brokers[0].pid != broker.pid
    config = local.layout.cluster("solo").config_file(7).read_text()
    assert "log.retention.hours=48" in config

    # a spec that would lock the satellite out of its own cluster is refused, not applied
    local.source.submit(solo_spec(generation=3, retention_hours="48", password="x" * 20))
    refused = wait_for(lambda: (st := local.status("solo")) and st.last_error and st, 20,
                       "the satellite to refuse the password change")
    assert "super-user of a running cluster cannot change" in (refused.last_error or "")
    assert refused.observed_generation == 2 and refused.brokers[0].pid == second.brokers[0].pid

    local.source.withdraw("solo")
    cluster_dir = local.layout.cluster("solo").root
    wait_for(lambda: not cluster_dir.exists() and local.status("solo") is None, 60,
             "the satellite to stop and delete cluster solo")
    pid = second.brokers[0].pid
    assert pid is not None
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert {b.id: b.pid for b in trio.status().brokers} == trio_pids
    assert trio.status().status == ClusterState.HEALTHY


@pytest.mark.timeout(600)
def test_a_broker_is_added_and_is_only_removed_once_it_holds_no_replica(trio: RunningCluster) -> None:
    local = trio.local
    original = trio.psc
    bigger = original.model_copy(update={
        "generation": original.generation + 1,
        "brokers": (*original.brokers, BrokerSpec(id=4, zone="zone-a")),
    })
    trio.psc = bigger
    local.source.submit(bigger)
    try:
        # a new broker formats, starts and registers: slow when the machine is busy
        st = trio.wait_healthy(timeout=270, since=time.time())
        assert [b.id for b in st.brokers] == [1, 2, 3, 4]
        fourth = next(b for b in st.brokers if b.id == 4)
        assert fourth.registered and fourth.pid

        # a client that takes broker 4 for the controller (KRaft names a random live broker)
        probe = _probe_whose_controller_is(trio, 4)

        admin = AdminClient(trio.client_config())
        topic = f"on-four-{uuid.uuid4().hex[:6]}"
        admin.create_topics([NewTopic(topic, 1, replica_assignment=[[4, 1, 2]])])[topic].result(30)

        # the spec drops broker 4 while it still holds a replica: the satellite must wait
        trio.psc = original.model_copy(update={"generation": bigger.generation + 1})
        local.source.submit(trio.psc)
        wait_for(lambda: "to be drained" in _log_tail(local), 30, "the satellite to refuse to drop broker 4")
        assert psutil.pid_exists(fourth.pid)
        assert local.layout.cluster(trio.id).node_dir(4).exists()

        admin.delete_topics([topic])[topic].result(30)
        wait_for(lambda: not local.layout.cluster(trio.id).node_dir(4).exists(), 60,
                 "broker 4 to be stopped and its data deleted once drained")
        st = trio.wait_healthy(timeout=270, since=time.time())
        assert [b.id for b in st.brokers] == [1, 2, 3]

        # with broker 4 gone, that client would wait for it until its next metadata refresh
        # (5 minutes): the probe starts over with a new client instead
        reports = []

        def answers() -> bool:
            reports.append(asyncio.run(probe.check([])))
            return reports[-1].error is None and reports[-1].registered_brokers == {1, 2, 3}

        wait_for(answers, 60, "the probe to answer without broker 4", interval=1)
        assert probe.controller() in (1, 2, 3), [r.error for r in reports]
    finally:
        if trio.psc.generation == bigger.generation:
            trio.psc = original.model_copy(update={"generation": bigger.generation + 1})
            local.source.submit(trio.psc)


def _probe_whose_controller_is(trio: RunningCluster, broker: int) -> ClusterProbe:
    st = trio.status()
    bootstrap = ",".join(f"{b.host}:{b.internal_port}" for b in st.brokers if b.id != broker)
    user = trio.psc.super_user
    for _ in range(60):  # each new client asks anew, and each answer names a random broker
        probe = ClusterProbe(bootstrap, user.name, user.password.get_secret_value())
        if probe.controller() == broker:
            return probe
    raise AssertionError(f"60 clients in a row were told another controller than broker {broker}")


def _log_tail(local: LocalDeployment) -> str:
    return local.log_tail(40)
