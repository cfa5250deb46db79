"""The scheduler's placement and PSC shaping, and the sizing rules: pure functions, no Kafka."""

from __future__ import annotations

import pytest

from streamplane.loops.balancer.model import Broker, BrokerCapacity, ClusterModel, Partition
from streamplane.models.psc import BrokerSpec, PhysicalClusterSpec
from streamplane.mothership.scheduler import (
    QUARANTINE_BROKERS,
    NoCapacityError,
    SchedulerSettings,
    broker_zones,
    choose_satellite,
    physical_cluster_spec,
    resized_spec,
    tenant_in_cell,
    with_cell,
)
from streamplane.mothership.sizing import (
    broker_count,
    kept_brokers,
    kept_specs,
    leaving_brokers,
    scale_in_problems,
)
from streamplane.mothership.store import ClusterType, LogicalClusterStatus
from streamplane.tenancy import DEFAULT_CELL
from streamplane.versions import DEFAULT_KAFKA_VERSION

from .conftest import World, satellite

GIB = 1 << 30
MB = 1_000_000


def spec(brokers: int, zones: int = 3, sat_zone: str = "zone-a") -> PhysicalClusterSpec:
    return physical_cluster_spec("pkc-test", satellite(zone=sat_zone), brokers, zones,
                                 DEFAULT_KAFKA_VERSION, SchedulerSettings())


def layout(s: PhysicalClusterSpec) -> list[tuple[int, str, str]]:
    return [(b.id, b.zone, b.cell) for b in sorted(s.brokers, key=lambda b: b.id)]


# ---- placement ----------------------------------------------------------------------------


def test_no_connected_satellite_is_refused_with_a_reason() -> None:
    with pytest.raises(NoCapacityError, match=r"^no satellite is connected$"):
        choose_satellite([], {}, 3)
    with pytest.raises(NoCapacityError, match=r"^no satellite in zone zone-z is connected$"):
        choose_satellite([satellite("sat-a", "zone-a")], {}, 3, zone="zone-z")


def test_no_room_names_the_satellite_with_the_most_free_slots() -> None:
    sats = [satellite("sat-a", max_brokers=4), satellite("sat-b", max_brokers=6, clusters=["system"], brokers=3)]
    # sat-a: 3 of 4 slots taken by a placed cluster; sat-b: 3 of 6 taken by what it runs itself
    with pytest.raises(NoCapacityError) as exc:
        choose_satellite(sats, {"sat-a": [3]}, 5)
    assert str(exc.value) == "no satellite has room for 5 more broker(s); the most free is sat-b with 3"


def test_an_overfull_satellite_reports_zero_free_slots_not_a_negative_count() -> None:
    with pytest.raises(NoCapacityError, match=r"the most free is sat-a with 0$"):
        choose_satellite([satellite("sat-a", max_brokers=3)], {"sat-a": [3, 3]}, 1)


def test_placement_spreads_clusters_before_filling_free_slots() -> None:
    sats = [satellite("sat-a", max_brokers=20), satellite("sat-b", max_brokers=5)]
    # sat-a has far more room but already runs a cluster: the empty sat-b takes the next one
    assert choose_satellite(sats, {"sat-a": [3]}, 3).name == "sat-b"
    # equal cluster counts: the most free slots wins
    assert choose_satellite(sats, {"sat-a": [3], "sat-b": [1]}, 3).name == "sat-a"
    # a cluster that does not fit is not placed where it would fit least badly
    assert choose_satellite(sats, {"sat-b": [1]}, 5).name == "sat-a"


def test_placement_counts_the_clusters_a_satellite_runs_on_its_own() -> None:
    sats = [satellite("sat-a", max_brokers=10, clusters=["system"], brokers=1),
            satellite("sat-b", max_brokers=10)]
    assert choose_satellite(sats, {}, 3).name == "sat-b"


def test_equal_satellites_are_chosen_by_name() -> None:
    sats = [satellite("sat-b"), satellite("sat-a"), satellite("sat-c")]
    assert choose_satellite(sats, {}, 3).name == "sat-a"


def test_the_reconciler_records_why_a_cluster_waits_for_capacity(world: World) -> None:
    world.directory.satellites = [satellite("sat-a", max_brokers=4)]
    lc = world.create("big", ClusterType.DEDICATED, cku=4)  # 6 brokers
    said = world.cycle()
    reason = "waiting for capacity: no satellite has room for 6 more broker(s); the most free is sat-a with 4"
    assert said == f"cluster big: {reason}"
    lc = world.lc(lc.id)
    assert (lc.status, lc.status_reason, lc.physical_cluster_id) == (
        LogicalClusterStatus.PROVISIONING, reason, None)
    assert world.cycle() == ""  # said once
    assert world.store.physical_clusters.list() == []
    world.directory.satellites = [satellite("sat-a", max_brokers=8)]
    assert "placed as" in world.cycle()
    assert len(world.pc(lc.id).spec.brokers) == 6


# ---- zones and the shape of a new PSC -------------------------------------------------------


def test_brokers_rotate_over_the_zones_of_a_satellite() -> None:
    assert broker_zones("zone-a", 3, 7) == ["zone-a-a", "zone-a-b", "zone-a-c"] * 2 + ["zone-a-a"]
    assert broker_zones("zone-a", 2, 3) == ["zone-a-a", "zone-a-b", "zone-a-a"]
    assert broker_zones("zone-a", 1, 3) == ["zone-a"] * 3
    assert broker_zones("zone-a", 0, 2) == ["zone-a"] * 2


def test_a_new_psc_numbers_brokers_from_one_in_zone_rotation() -> None:
    s = spec(4)
    assert layout(s) == [(1, "zone-a-a", DEFAULT_CELL), (2, "zone-a-b", DEFAULT_CELL),
                         (3, "zone-a-c", DEFAULT_CELL), (4, "zone-a-a", DEFAULT_CELL)]
    assert (s.controllers.mode, s.controllers.count) == ("combined", 3)
    assert s.broker_configs["default.replication.factor"] == "3"
    assert s.broker_configs["min.insync.replicas"] == "2"
    one = spec(1, zones=1)
    assert (one.controllers.count, one.broker_configs["default.replication.factor"],
            one.broker_configs["min.insync.replicas"]) == (1, "1", "1")


# ---- resizing ---------------------------------------------------------------------------


def test_growing_adds_the_next_ids_and_continues_the_zone_rotation() -> None:
    base = spec(3)
    grown = resized_spec(base, 5, "zone-a", 3)
    assert layout(grown) == [(1, "zone-a-a", DEFAULT_CELL), (2, "zone-a-b", DEFAULT_CELL),
                             (3, "zone-a-c", DEFAULT_CELL), (4, "zone-a-a", DEFAULT_CELL),
                             (5, "zone-a-b", DEFAULT_CELL)]
    # from 4 brokers the rotation goes on where it stopped
    assert layout(resized_spec(spec(4), 6, "zone-a", 3))[4:] == [
        (5, "zone-a-b", DEFAULT_CELL), (6, "zone-a-c", DEFAULT_CELL)]
    # the rest of the spec is kept
    assert grown.model_dump(exclude={"brokers"}) == base.model_dump(exclude={"brokers"})


def test_growing_continues_after_the_highest_id_even_with_gaps() -> None:
    s = spec(3).model_copy(update={"brokers": (BrokerSpec(id=1), BrokerSpec(id=2), BrokerSpec(id=7))})
    assert [b.id for b in resized_spec(s, 5, "zone-a", 1).brokers] == [1, 2, 7, 8, 9]


def test_shrinking_drops_the_highest_ids() -> None:
    five = resized_spec(spec(3), 5, "zone-a", 3)
    shuffled = five.model_copy(update={"brokers": tuple(reversed(five.brokers))})
    shrunk = resized_spec(shuffled, 3, "zone-a", 3)
    assert layout(shrunk) == layout(spec(3))
    assert resized_spec(five, 5, "zone-a", 3).brokers == five.brokers


def test_shrinking_below_the_combined_controllers_is_refused() -> None:
    with pytest.raises(ValueError, match="runs 3 controllers inside its brokers, so it cannot shrink to 2"):
        resized_spec(spec(5), 2, "zone-a", 3)
    # dedicated controllers do not live in the brokers: the brokers may go below their count
    dedicated = spec(3).model_copy(update={"controllers": spec(3).controllers.model_copy(
        update={"mode": "dedicated"})})
    assert [b.id for b in resized_spec(dedicated, 1, "zone-a", 3).brokers] == [1]


# ---- cells ------------------------------------------------------------------------------


def test_with_cell_adds_brokers_with_the_next_ids_over_the_clusters_zones() -> None:
    s = with_cell(spec(3), "quarantine", 3, "zone-a")
    assert layout(s)[3:] == [(4, "zone-a-a", "quarantine"), (5, "zone-a-b", "quarantine"),
                             (6, "zone-a-c", "quarantine")]
    single_zone = with_cell(spec(3, zones=1), "quarantine", 2, "zone-a")
    assert layout(single_zone)[3:] == [(4, "zone-a", "quarantine"), (5, "zone-a", "quarantine")]


def test_quarantine_adds_a_three_broker_cell_once_and_release_moves_the_tenant_back() -> None:
    s = spec(3)
    one = tenant_in_cell(s, "lkc-one", "quarantine", "zone-a")
    assert one.tenant_cells == {"lkc-one": "quarantine"}
    assert [b.id for b in one.brokers if b.cell == "quarantine"] == [4, 5, 6]
    assert QUARANTINE_BROKERS == 3
    # a second tenant moves into the existing cell: no new brokers
    two = tenant_in_cell(one, "lkc-two", "quarantine", "zone-a")
    assert two.tenant_cells == {"lkc-one": "quarantine", "lkc-two": "quarantine"}
    assert two.brokers == one.brokers
    # quarantining the same tenant again changes nothing
    assert tenant_in_cell(two, "lkc-one", "quarantine", "zone-a") == two
    # release: back to the default cell, which is "not listed"; the cell's brokers stay
    released = tenant_in_cell(two, "lkc-one", DEFAULT_CELL, "zone-a")
    assert released.tenant_cells == {"lkc-two": "quarantine"}
    assert released.brokers == two.brokers
    assert tenant_in_cell(released, "lkc-two", DEFAULT_CELL, "zone-a").tenant_cells == {}
    # the input is never changed
    assert s.tenant_cells == {} and len(s.brokers) == 3


# ---- sizing -----------------------------------------------------------------------------


def test_ckus_buy_brokers_and_the_lowest_ids_stay() -> None:
    assert [broker_count(c) for c in (1, 2, 3, 8)] == [3, 4, 5, 10]
    assert kept_brokers([5, 1, 4, 2, 3], 1) == [1, 2, 3]
    assert leaving_brokers([5, 1, 4, 2, 3], 1) == [4, 5]
    assert leaving_brokers([1, 2, 3], 3) == []  # growing drops nothing
    assert kept_brokers([1, 2, 3], 3) == [1, 2, 3]
    assert [b.id for b in kept_specs([BrokerSpec(id=i) for i in (9, 3, 1, 4)], 2)] == [1, 3]
    with pytest.raises(ValueError, match="cku must be between 1 and 8"):
        leaving_brokers([1, 2, 3], 0)


def model(partitions: list[Partition], n_brokers: int = 5, disk_bytes: float | None = 10 * GIB,
          ) -> ClusterModel:
    cap = BrokerCapacity(disk_bytes=disk_bytes)
    return ClusterModel(brokers=[Broker(id=i, zone=f"zone-{'abc'[(i - 1) % 3]}", capacity=cap)
                                 for i in range(1, n_brokers + 1)], partitions=partitions)


def topic(name: str, partitions: int, rf: int = 3, size_bytes: int = 0, bytes_in_per_s: float = 0.0,
          n_brokers: int = 5) -> list[Partition]:
    out = []
    for p in range(partitions):
        reps = tuple((p + k) % n_brokers + 1 for k in range(rf))
        out.append(Partition(topic=name, partition=p, replicas=reps, leader=reps[0],
                             size_bytes=size_bytes, bytes_in_per_s=bytes_in_per_s))
    return out


def test_a_small_cluster_may_shrink() -> None:
    m = model(topic("orders", 6, size_bytes=GIB, bytes_in_per_s=MB))
    assert scale_in_problems(m, range(1, 6), 1) == []


def test_scale_in_is_blocked_by_a_topic_wider_than_the_kept_brokers() -> None:
    m = model(topic("wide", 2, rf=4) + topic("narrow", 2, rf=3))
    assert scale_in_problems(m, range(1, 6), 1) == [
        "replication factor above the broker count: topic wide has 4 replicas"]
    assert scale_in_problems(m, range(1, 6), 2) == []
    many = model([p for i in range(7) for p in topic(f"w{i}", 1, rf=5)])
    assert scale_in_problems(many, range(1, 6), 1)[0].endswith("topic w4 has 5 replicas and more")


def test_scale_in_is_blocked_by_more_user_partitions_than_the_ckus_allow() -> None:
    internal = topic("__consumer_offsets", 50, rf=1)
    assert scale_in_problems(model(topic("t", 1500, rf=1) + internal), range(1, 6), 1) == []
    assert scale_in_problems(model(topic("t", 1501, rf=1) + internal), range(1, 6), 1) == [
        "it has 1501 partitions and 1 CKU allow 1500"]


def test_scale_in_is_blocked_by_data_over_80_percent_of_the_kept_disks() -> None:
    # 3 kept brokers x 10 GiB x 80% = 24 GiB; 9 GiB x 3 replicas = 27 GiB
    m = model(topic("big", 9, size_bytes=GIB))
    assert scale_in_problems(m, range(1, 6), 1) == [
        "it holds 27.00 GiB with replicas and 3 brokers hold 24.00 GiB at 80% of their disks"]
    assert scale_in_problems(m, range(1, 6), 2) == []  # 4 brokers: 32 GiB
    # unknown disk sizes: no disk check
    assert scale_in_problems(model(topic("big", 9, size_bytes=GIB), disk_bytes=None), range(1, 6), 1) == []


def test_scale_in_is_blocked_by_ingress_above_what_the_ckus_allow() -> None:
    m = model(topic("hot", 3, rf=1, bytes_in_per_s=20 * MB))
    assert scale_in_problems(m, range(1, 6), 1) == ["it takes in 60.0 MB/s and 1 CKU allow 50 MB/s"]
    assert scale_in_problems(m, range(1, 6), 2) == []


def test_ingress_is_what_clients_produce_not_what_replicas_copy() -> None:
    m = model(topic("replicated", 3, rf=3, bytes_in_per_s=20 * MB / 3))  # 20 MB/s produced
    assert scale_in_problems(m, range(1, 6), 1) == []


def test_problems_are_all_reported_together() -> None:
    m = model(topic("wide", 1, rf=4, size_bytes=9 * GIB, bytes_in_per_s=60 * MB) + topic("t", 1600, rf=1))
    problems = scale_in_problems(m, range(1, 6), 1)
    assert [p.split(" ")[0:2] for p in problems] == [
        ["replication", "factor"], ["it", "has"], ["it", "holds"], ["it", "takes"]]
