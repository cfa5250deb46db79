"""The analyzer on synthetic load models: balance, scale-out, scale-in, zones, cells, limits."""

from __future__ import annotations

import random

import pytest

from streamplane.loops.balancer.analyzer import Analyzer, HardGoalError
from streamplane.loops.balancer.goals import (
    BrokerDrainGoal,
    CapacityGoal,
    DistributionGoal,
    GoalConfig,
    RackAwareGoal,
    default_goals,
)
from streamplane.loops.balancer.model import (
    Broker,
    BrokerCapacity,
    BrokerState,
    ClusterModel,
    Partition,
    Resource,
)

from .conftest import MIB, brokers, check_plan, distinct_zones, synthetic

SOFT = ["replicas-distribution", "disk-distribution", "nw-in-distribution", "leaders-distribution",
        "nw-out-distribution"]
HARD = ["rack-aware", "cell-containment", "broker-drain", "disk-capacity", "nw-in-capacity",
        "nw-out-capacity"]


def soft_imbalance(model: ClusterModel) -> dict[str, float]:
    return {g.name: g.imbalance(model) for g in default_goals() if g.name in SOFT}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_skewed_cluster_ends_within_ten_percent_on_every_soft_goal(seed: int) -> None:
    model = synthetic(n_brokers=9, topics=20, partitions=30, skew=2.0, zipf=0.8, seed=seed)
    assert max(soft_imbalance(model).values()) > 0.5, "the fixture should start badly skewed"

    plan = Analyzer().plan(model)

    after = check_plan(model, plan)
    measured = soft_imbalance(after)
    assert all(v <= 0.10 + 1e-9 for v in measured.values()), measured
    assert all(plan.after[g] == pytest.approx(measured[g]) for g in SOFT)
    assert all(plan.after[g] == 0 for g in HARD)
    assert distinct_zones(after)
    assert plan.unmet == {}
    assert len(plan.moves) < len(model.partitions)


def test_a_balanced_cluster_gets_an_empty_plan() -> None:
    model = synthetic(n_brokers=9, topics=10, partitions=30)
    assert max(soft_imbalance(model).values()) <= 0.10 + 1e-9

    plan = Analyzer().plan(model)

    assert plan.moves == ()
    assert plan.bytes_to_move == 0
    assert "no moves" in plan.explanation


def test_imbalance_below_the_threshold_is_left_alone_and_above_it_is_fixed() -> None:
    model = synthetic(n_brokers=6, topics=10, partitions=30)
    heavy = max(model.broker_ids, key=lambda b: model.load_of(b, Resource.DISK))
    grow = sorted(model.hosted_by(heavy))[:20]

    def grown(factor: float) -> ClusterModel:
        parts = [p.model_copy(update={"size_bytes": int(p.size_bytes * factor)}) if i in grow else p
                 for i, p in enumerate(model.partitions)]
        return ClusterModel(brokers=model.brokers, partitions=parts)

    slightly = grown(2.0)  # 20 of the heavy broker's 150 replicas twice as big: 6% over
    assert 0.05 < DistributionGoal(Resource.DISK, GoalConfig()).imbalance(slightly) < 0.10
    assert Analyzer().plan(slightly).moves == ()

    badly = grown(4.0)  # 17% over
    plan = Analyzer().plan(badly)
    assert plan.before["disk-distribution"] > 0.10
    assert plan.moves and plan.after["disk-distribution"] <= 0.10


def test_leadership_skew_is_fixed_with_leadership_moves_only() -> None:
    model = synthetic(n_brokers=6, topics=10, partitions=30)
    # hand every partition's leadership to its replica on the lowest broker id
    for i, p in enumerate(model.partitions):
        model.move_leadership(i, min(p.replicas))
    assert DistributionGoal(Resource.LEADERS, GoalConfig()).imbalance(model) > 0.5

    plan = Analyzer().plan(model)

    assert plan.moves
    assert all(m.leader_only for m in plan.moves)
    assert plan.bytes_to_move == 0
    after = check_plan(model, plan)
    assert plan.after["leaders-distribution"] <= 0.10
    assert soft_imbalance(after)["nw-out-distribution"] <= 0.10


def test_scale_out_gives_two_new_empty_brokers_their_share() -> None:
    old = brokers(6, zones=3)
    model = synthetic(topics=20, partitions=30, zipf=0.5, broker_list=old, seed=4)
    new = [Broker(id=7, zone="zone-a"), Broker(id=8, zone="zone-b")]
    grown = model.with_brokers(new)
    assert grown.load_of(7, Resource.REPLICAS) == 0

    plan = Analyzer().plan(grown)

    after = check_plan(grown, plan)
    assert distinct_zones(after)
    # zones a and b now have three brokers each, so each new broker should carry a third
    # of its zone's replicas and disk, like the old brokers of that zone
    for b in (7, 8):
        zone = after.broker(b).zone
        peers = [x.id for x in after.brokers if x.zone == zone]
        for resource in (Resource.REPLICAS, Resource.DISK):
            mean = after.total(resource, peers) / len(peers)
            assert after.load_of(b, resource) == pytest.approx(mean, rel=0.10), (b, resource)
        assert after.load_of(b, Resource.LEADERS) > 0
    assert all(v <= 0.10 + 1e-9 for v in soft_imbalance(after).values())
    # only what the new brokers need moves: about 2 of 8 replicas per zone-a/b partition
    assert len([m for m in plan.moves if m.added]) < 0.8 * len(model.partitions)


def test_scale_in_empties_draining_brokers_and_moves_leadership_off_first() -> None:
    model = synthetic(n_brokers=9, topics=20, partitions=30, zipf=0.5, seed=5)
    draining = {8: BrokerState.DRAINING, 9: BrokerState.DRAINING}
    led_by_leaving = {model.partitions[i].key for b in draining for i in model.led_by(b)}
    shrinking = model.with_broker_states(draining)

    plan = Analyzer().plan(shrinking)

    after = check_plan(shrinking, plan)
    for b in draining:
        assert after.load_of(b, Resource.REPLICAS) == 0
        assert after.load_of(b, Resource.LEADERS) == 0
    assert distinct_zones(after)
    assert plan.after["broker-drain"] == 0 and "broker-drain" not in plan.unmet
    # every leadership leaves the draining brokers before the first byte is copied
    first_copy = next(n for n, m in enumerate(plan.moves) if m.added)
    early = {(m.topic, m.partition) for m in plan.moves[:first_copy]}
    assert led_by_leaving <= early
    assert all(m.leader_only or not m.added for m in plan.moves[:first_copy])
    for m in plan.moves[:first_copy]:
        assert m.replicas[0] not in draining
    assert all(v <= 0.10 + 1e-9 for v in soft_imbalance(after).values())


def test_a_dead_broker_has_its_replicas_recreated_elsewhere() -> None:
    model = synthetic(n_brokers=9, topics=10, partitions=30)
    dead = 5
    parts = []
    for p in model.partitions:  # what Kafka reports once a broker is gone
        leader = p.leader if p.leader != dead else next(b for b in p.replicas if b != dead)
        isr = tuple(b for b in p.replicas if b != dead)
        parts.append(p.model_copy(update={"leader": leader, "isr": isr}))
    gone = ClusterModel(brokers=model.with_broker_states({dead: BrokerState.DEAD}).brokers, partitions=parts)

    plan = Analyzer().plan(gone)

    after = check_plan(gone, plan)
    assert after.load_of(dead, Resource.REPLICAS) == 0
    assert distinct_zones(after)
    assert all("broker-drain: broker 5 is dead" in m.reason for m in plan.moves if dead in m.removed)


def test_excluded_broker_is_emptied_and_receives_nothing() -> None:
    model = synthetic(n_brokers=9, topics=10, partitions=30, skew=1.5, zipf=0.5, seed=6)
    excluded = model.with_broker_states({1: BrokerState.EXCLUDED})

    plan = Analyzer().plan(excluded)

    after = check_plan(excluded, plan)
    assert after.load_of(1, Resource.REPLICAS) == 0
    assert not any(1 in m.added for m in plan.moves)


def test_replicas_sharing_a_zone_are_spread_with_one_move_each() -> None:
    model = synthetic(n_brokers=9, topics=10, partitions=30)
    zone_a = [b.id for b in model.brokers if b.zone == "zone-a"]
    crowded = []
    for i, p in enumerate(model.partitions[:20]):
        # put a second replica into the leader's zone
        leader_zone = model.broker(p.replicas[0]).zone
        follower = p.replicas[1]
        same = next(b for b in model.broker_ids
                    if model.broker(b).zone == leader_zone and b not in p.replicas)
        model.move_replica(i, follower, same)
        crowded.append(p.key)
    assert RackAwareGoal().imbalance(model) == 20
    assert zone_a

    plan = Analyzer(default_goals()[:1]).plan(model)

    after = check_plan(model, plan)
    assert distinct_zones(after)
    assert len(plan.moves) == 20
    assert all(m.reason.startswith("rack-aware") for m in plan.moves)


def test_too_few_live_zones_is_reported_and_strict_mode_raises() -> None:
    model = synthetic(n_brokers=9, topics=4, partitions=10)
    zone_c = {b.id: BrokerState.DRAINING for b in model.brokers if b.zone == "zone-c"}
    shrinking = model.with_broker_states(zone_c)

    plan = Analyzer().plan(shrinking)

    assert "3 replicas need 3 zones but only 2 have live brokers" in plan.unmet["rack-aware"]
    assert "rack-aware" in plan.explanation
    # the drain still happens, keeping the two live zones both used
    after = check_plan(shrinking, plan)
    assert all(after.load_of(b, Resource.REPLICAS) == 0 for b in zone_c)
    assert all(len(set(after.zones_of(p))) == 2 for p in after.partitions)
    with pytest.raises(HardGoalError, match="only 2 have live brokers"):
        Analyzer().plan(shrinking, strict=True)


def test_tenant_replicas_move_into_their_cell_and_stay_there() -> None:
    bl = brokers(12, zones=3, cells=("cell-0", "cell-1"))
    cell_of = {b.id: b.cell for b in bl}
    tenants = synthetic(topics=6, partitions=20, broker_list=bl, topic_prefix="lkc-abc123_t", seed=7,
                        zipf=0.5, skew=1.0)
    shared = synthetic(topics=4, partitions=20, broker_list=bl, topic_prefix="__internal", seed=8)
    model = ClusterModel(brokers=bl, partitions=tenants.partitions + shared.partitions,
                         tenant_cells={"lkc-abc123": "cell-1"})
    outside = sum(1 for p in model.partitions if p.tenant and any(cell_of[b] != "cell-1" for b in p.replicas))
    assert outside > 50

    plan = Analyzer().plan(model)

    after = check_plan(model, plan)
    for p in after.partitions:
        if p.tenant:
            assert {cell_of[b] for b in p.replicas} == {"cell-1"}, p
    assert distinct_zones(after)
    assert plan.after["cell-containment"] == 0 and plan.unmet == {}
    assert all(v <= 0.10 + 1e-9 for v in soft_imbalance(after).values())


def test_a_cell_too_small_for_its_tenant_is_reported() -> None:
    bl = [*brokers(6, zones=3), Broker(id=7, zone="zone-a", cell="cell-q"), Broker(id=8, zone="zone-b", cell="cell-q")]
    model = synthetic(topics=2, partitions=5, broker_list=bl[:6], topic_prefix="lkc-noisy_t")
    quarantined = ClusterModel(brokers=bl, partitions=model.partitions, tenant_cells={"lkc-noisy": "cell-q"})

    plan = Analyzer().plan(quarantined)

    assert "tenant lkc-noisy" in plan.unmet["cell-containment"]
    assert "2 live broker(s) for up to 3 replicas" in plan.unmet["cell-containment"]
    check_plan(quarantined, plan)


def test_capacity_limits_move_load_off_a_full_broker() -> None:
    bl = [b.model_copy(update={"capacity": BrokerCapacity(disk_bytes=24_000 * MIB)}) for b in brokers(6)]
    model = synthetic(topics=10, partitions=30, broker_list=bl, skew=2.0, seed=9)
    cap = CapacityGoal(Resource.DISK, GoalConfig())
    assert cap.over(model), "fixture: some broker above 80% of its disk"

    plan = Analyzer(default_goals()[:4]).plan(model)

    after = check_plan(model, plan)
    assert cap.over(after) == []
    assert plan.before["disk-capacity"] > 0 and plan.after["disk-capacity"] == 0
    assert distinct_zones(after)


def test_capacity_that_cannot_be_met_says_to_add_brokers() -> None:
    bl = [b.model_copy(update={"capacity": BrokerCapacity(disk_bytes=2_000 * MIB)}) for b in brokers(6)]
    model = synthetic(topics=10, partitions=30, broker_list=bl)

    plan = Analyzer().plan(model)

    assert "add brokers" in plan.unmet["disk-capacity"]


def test_later_goals_never_undo_earlier_ones() -> None:
    # a disk goal alone would happily pile replicas into one zone; after the rack goal it may not
    model = synthetic(n_brokers=9, topics=20, partitions=30, skew=2.0, zipf=1.0, seed=10)
    plan = Analyzer([RackAwareGoal(), BrokerDrainGoal(), DistributionGoal(Resource.DISK, GoalConfig())]).plan(model)
    after = check_plan(model, plan)
    assert distinct_zones(after)
    assert plan.after["disk-distribution"] < plan.before["disk-distribution"]


def test_a_moved_partition_appears_once_with_its_final_replicas() -> None:
    model = synthetic(n_brokers=9, topics=20, partitions=30, skew=2.0, zipf=0.8, seed=11)
    plan = Analyzer().plan(model)
    keys = [(m.topic, m.partition) for m in plan.moves]
    assert len(keys) == len(set(keys))
    # data moves are ordered smallest first, so an executor makes early progress
    copies = [m.bytes_to_move for m in plan.moves if m.added]
    assert copies == sorted(copies)


def test_offline_partition_and_unknown_isr_do_not_break_planning() -> None:
    bl = brokers(4, zones=2)
    parts = [Partition(topic="t", partition=0, replicas=(1, 3), leader=None, size_bytes=10),
             Partition(topic="t", partition=1, replicas=(2, 4), leader=2, isr=(2,), size_bytes=10)]
    model = ClusterModel(brokers=bl, partitions=parts).with_broker_states({1: BrokerState.DEAD, 3: BrokerState.DEAD})
    plan = Analyzer().plan(model)
    after = check_plan(model, plan)
    assert all(not ({1, 3} & set(p.replicas)) for p in after.partitions)


@pytest.mark.parametrize("seed", range(6))
def test_zone_and_cell_constraints_hold_in_every_resulting_assignment(seed: int) -> None:
    rng = random.Random(seed)
    bl = brokers(12, zones=3, cells=("cell-0", "cell-1"))
    tenants = {f"lkc-t{n}": rng.choice(("cell-0", "cell-1")) for n in range(4)}
    parts: list[Partition] = []
    for n, tenant in enumerate(tenants):
        cell_brokers = [b for b in bl if b.cell == tenants[tenant]]
        parts += synthetic(topics=3, partitions=10, broker_list=cell_brokers, topic_prefix=f"{tenant}_t",
                           seed=seed * 10 + n, zipf=0.7, skew=1.5).partitions
    parts += synthetic(topics=3, partitions=10, broker_list=bl, topic_prefix="shared", seed=seed).partitions
    model = ClusterModel(brokers=bl, partitions=parts, tenant_cells=tenants)
    # then something happens: brokers are added, one drains, one dies
    model = model.with_brokers([Broker(id=13, zone="zone-a", cell="cell-1"), Broker(id=14, zone="zone-b")])
    # (in different zones, so cell-0 keeps a live broker in each of the three)
    draining = rng.choice([1, 2, 3])
    excluded = rng.choice([b for b in (7, 8, 9) if model.broker(b).zone != model.broker(draining).zone])
    model = model.with_broker_states({draining: BrokerState.DRAINING, excluded: BrokerState.EXCLUDED})

    plan = Analyzer().plan(model)

    after = check_plan(model, plan)
    assert plan.unmet == {}, plan.unmet
    assert distinct_zones(after)
    for p in after.partitions:
        assert all(after.broker(b).alive for b in p.replicas), p
        if p.tenant:
            assert {after.broker(b).cell for b in p.replicas} == {tenants[p.tenant]}, p
