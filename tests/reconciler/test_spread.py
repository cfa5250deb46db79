"""Clusters over several satellites: placement by zone, the controller ports satellites
choose copied into the PSC, and one status from every satellite's report. No Kafka."""

from __future__ import annotations

from collections import Counter

import pytest

from streamplane.models.status import ClusterState, ClusterStatus, NodeState, NodeStatus
from streamplane.mothership.cluster_status import merge
from streamplane.mothership.scheduler import NoCapacityError, place_brokers
from streamplane.mothership.store import ClusterType, LogicalClusterStatus

from .conftest import World, satellite

FLEET = [satellite(f"sat-{z}{i}", f"zone-{z}", max_brokers=4) for z in "abc" for i in (1, 2)]


def names(sats: list) -> list[str]:  # type: ignore[type-arg]
    return [s.name for s in sats]


def test_a_multi_zone_cluster_rotates_over_three_zones_one_broker_per_satellite_first() -> None:
    placed = place_brokers(FLEET, {}, 6, 3)
    assert [s.zone for s in placed] == ["zone-a", "zone-b", "zone-c"] * 2
    assert sorted(names(placed)) == sorted(names(FLEET)), "no satellite gets two while another has room"
    three = place_brokers(FLEET, {}, 3, 3)
    assert [s.zone for s in three] == ["zone-a", "zone-b", "zone-c"]  # the controllers, one per zone


def test_busy_satellites_are_avoided_and_full_ones_skipped() -> None:
    placed = place_brokers(FLEET, {"sat-a1": [4], "sat-b1": [1]}, 3, 3)
    assert names(placed) == ["sat-a2", "sat-b2", "sat-c1"]
    with pytest.raises(NoCapacityError, match="zone zone-a has no satellite with room"):
        place_brokers(FLEET, {"sat-a1": [4], "sat-a2": [3]}, 4, 3)


def test_too_few_zones_is_refused_with_the_zones_there_are() -> None:
    two_zones = [s for s in FLEET if s.zone != "zone-c"]
    with pytest.raises(NoCapacityError) as exc:
        place_brokers(two_zones, {}, 3, 3)
    assert str(exc.value) == ("a multi-zone cluster needs connected satellites in 3 zones; "
                              "they are in 2 (zone-a, zone-b)")


def test_a_single_zone_cluster_stays_in_one_zone_spread_over_its_satellites() -> None:
    placed = place_brokers(FLEET, {"sat-a1": [1]}, 4, 1)
    assert {s.zone for s in placed} == {"zone-b"}  # zone-a already runs a cluster
    assert Counter(names(placed)) == {"sat-b1": 2, "sat-b2": 2}
    with pytest.raises(NoCapacityError, match="no zone has room for 9 more broker"):
        place_brokers(FLEET, {}, 9, 1)


def test_growing_continues_the_rotation_over_the_clusters_own_zones() -> None:
    more = place_brokers(FLEET, {}, 2, 3, avoid=["zone-a", "zone-b", "zone-c"], start=3,
                         cluster=["sat-a1", "sat-b1", "sat-c1"])
    assert names(more) == ["sat-a2", "sat-b2"]


def spread_world(world: World) -> None:
    world.directory.satellites = [satellite(f"sat-{z}", f"zone-{z}") for z in "abc"]


def report(psc: object, satellite_name: str, node_ids: list[int], ports: dict[int, int],
           state: ClusterState = ClusterState.HEALTHY, observed: int | None = None) -> ClusterStatus:
    spec = psc  # a PhysicalClusterSpec
    return ClusterStatus(
        id=spec.id, satellite=satellite_name, status=state, generation=spec.generation,  # type: ignore[attr-defined]
        observed_generation=spec.generation if observed is None else observed,  # type: ignore[attr-defined]
        kafka_version=spec.kafka_version, quorum_leader=1,  # type: ignore[attr-defined]
        brokers=[NodeStatus(id=i, roles=["broker", "controller"], state=NodeState.RUNNING,
                            host=f"10.1.0.{10 + i}", port=9092, controller_port=ports[i],
                            metrics_port=9404, satellite=satellite_name, registered=True)
                 for i in node_ids])


def test_a_multi_zone_cluster_is_placed_pinned_and_runs_once_every_satellite_is_healthy(world: World) -> None:
    spread_world(world)
    lc = world.create("orders", ClusterType.DEDICATED, cku=1, zones=3)
    said = world.cycle()
    pc = world.pc(lc.id)
    assert said == f"cluster orders: placed as {pc.id} on satellites sat-a, sat-b, sat-c"
    assert [(b.id, b.satellite, b.zone) for b in pc.spec.brokers] == [
        (1, "sat-a", "zone-a"), (2, "sat-b", "zone-b"), (3, "sat-c", "zone-c")]
    assert pc.spec.satellite == "sat-a" and pc.spec.controller_ids() == [1, 2, 3]
    assert world.cycle().startswith(f"published {pc.id} generation 1 to satellites sat-a, sat-b, sat-c")
    # each satellite chose its node's controller port and reports it, waiting for the others
    ports = {1: 21001, 2: 21002, 3: 21003}
    for i, sat in enumerate(("sat-a", "sat-b", "sat-c"), start=1):
        world.statuses.set(report(pc.spec, sat, [i], ports, ClusterState.STARTING, observed=0))
    said = world.cycle()
    pc = world.pc(lc.id)
    assert f"{pc.id}: recorded the controller ports its satellites chose (generation 2)" in said
    assert {b.id: b.controller_port for b in pc.spec.brokers} == ports
    assert world.publisher.last(pc.id) == pc.spec
    world.cycle()
    assert world.lc(lc.id).status == LogicalClusterStatus.PROVISIONING
    # two satellites healthy at generation 2 is not enough
    for i, sat in enumerate(("sat-a", "sat-b"), start=1):
        world.statuses.set(report(pc.spec, sat, [i], ports))
    world.cycle()
    assert world.lc(lc.id).status == LogicalClusterStatus.PROVISIONING
    world.statuses.set(report(pc.spec, "sat-c", [3], ports))
    world.cycle()
    running = world.lc(lc.id)
    assert running.status == LogicalClusterStatus.RUNNING
    assert running.bootstrap == "10.1.0.11:9092,10.1.0.12:9092,10.1.0.13:9092"


def test_one_status_from_every_satellites_report() -> None:
    base = dict(id="pkc-x", generation=2, kafka_version="4.1.0", observed_generation=2)

    def st(sat: str, state: ClusterState, node: int, **kw: object) -> ClusterStatus:
        return ClusterStatus(satellite=sat, status=state, **{**base, **kw},  # type: ignore[arg-type]
                             brokers=[NodeStatus(id=node, roles=["broker"], state=NodeState.RUNNING,
                                                 host=f"10.0.0.{node}", port=9092, metrics_port=1)])

    healthy = merge("sat-a", {"sat-a": st("sat-a", ClusterState.HEALTHY, 1, quorum_leader=1),
                              "sat-b": st("sat-b", ClusterState.HEALTHY, 2, quorum_leader=2)})
    assert healthy is not None and healthy.status == ClusterState.HEALTHY
    assert healthy.quorum_leader == 1 and healthy.satellite == "sat-a"  # the coordinator's view
    assert [b.id for b in healthy.brokers] == [1, 2]
    one_down = merge("sat-a", {"sat-a": st("sat-a", ClusterState.HEALTHY, 1),
                               "sat-b": st("sat-b", ClusterState.DEGRADED, 2, message="node 2 died")})
    assert one_down is not None and one_down.status == ClusterState.DEGRADED
    assert one_down.message == "sat-b: node 2 died"
    silent = merge("sat-a", {"sat-a": st("sat-a", ClusterState.HEALTHY, 1), "sat-b": None})
    assert silent is not None and silent.status == ClusterState.DEGRADED
    assert silent.observed_generation is None and "no report from satellite sat-b" in silent.message
    assert merge("sat-a", {"sat-a": None}) is None


def test_scaling_out_a_multi_zone_cluster_continues_its_zone_rotation_on_other_satellites(
        world: World) -> None:
    world.directory.satellites = list(FLEET)
    lc = world.create("orders", ClusterType.DEDICATED, cku=1, zones=3)
    world.cycle()
    pc = world.pc(lc.id)
    first = {b.id: b.satellite for b in pc.spec.brokers}
    assert sorted(first.values()) == ["sat-a1", "sat-b1", "sat-c1"]
    world.cycle()  # published
    ports = {1: 21001, 2: 21002, 3: 21003}
    for i in (1, 2, 3):
        world.statuses.set(report(pc.spec, first[i], [i], ports, ClusterState.STARTING, observed=0))
    world.cycle()  # controller ports recorded: generation 2
    pc = world.pc(lc.id)
    for i in (1, 2, 3):
        world.statuses.set(report(pc.spec, first[i], [i], ports))
    world.cycle()
    assert world.lc(lc.id).status == LogicalClusterStatus.RUNNING
    world.scale(world.lc(lc.id), 3)
    said = world.cycle()
    pc = world.pc(lc.id)
    assert said == f"cluster orders: adding broker(s) 4, 5 to {pc.id} (generation 3)"
    assert [(b.id, b.zone, b.satellite) for b in pc.spec.brokers][3:] == [
        (4, "zone-a", "sat-a2"), (5, "zone-b", "sat-b2")]
    assert {b.id: b.host for b in pc.spec.brokers}[4] == "127.0.0.1"
    assert world.cycle().startswith(f"published {pc.id} generation 3 to satellites sat-a1, sat-a2, sat-b1")
