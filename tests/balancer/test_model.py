"""The load model: aggregates, what-if changes, tenants, serialization."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from streamplane.loops.balancer.model import Broker, BrokerState, ClusterModel, Partition, Resource
from streamplane.loops.balancer.plan import PartitionMove, Plan

from .conftest import brokers, synthetic


def small() -> ClusterModel:
    return ClusterModel(
        cluster_id="c1",
        brokers=brokers(3, zones=3),
        partitions=[
            Partition(topic="lkc-ab12cd_orders", partition=0, replicas=(1, 2, 3), leader=1,
                      size_bytes=1000, bytes_in_per_s=10.0, bytes_out_per_s=30.0),
            Partition(topic="payments", partition=0, replicas=(2, 3), leader=3,
                      size_bytes=500, bytes_in_per_s=4.0, bytes_out_per_s=8.0),
        ],
        tenant_cells={"lkc-ab12cd": "cell-0"},
    )


def test_every_replica_carries_disk_and_bytes_in_and_only_the_leader_bytes_out() -> None:
    m = small()
    assert m.load(1).model_dump() == {"broker": 1, "disk_bytes": 1000, "nw_in_bytes_per_s": 10.0,
                                      "nw_out_bytes_per_s": 30.0, "replicas": 1, "leaders": 1}
    assert m.load(3).model_dump() == {"broker": 3, "disk_bytes": 1500, "nw_in_bytes_per_s": 14.0,
                                      "nw_out_bytes_per_s": 8.0, "replicas": 2, "leaders": 1}
    # cluster nw-in is each partition's bytes-in times its replication factor
    assert m.total(Resource.NW_IN) == 10.0 * 3 + 4.0 * 2


def test_tenants_come_from_the_topic_prefix() -> None:
    m = small()
    orders, payments = m.partitions
    assert orders.tenant == "lkc-ab12cd" and m.tenant_cell(orders) == "cell-0"
    assert payments.tenant is None and m.tenant_cell(payments) is None


def test_moves_on_a_clone_leave_the_original_alone() -> None:
    m = small()
    c = m.clone()
    c.move_replica(1, 2, 1)
    c.move_leadership(0, 2)
    assert c.partition("payments", 0).replicas == (3, 1)
    assert c.partition("lkc-ab12cd_orders", 0).replicas == (2, 1, 3)
    assert c.load(1).replicas == 2 and c.load(2).leaders == 1 and c.load(2).nw_out_bytes_per_s == 30.0
    assert m.load(1).replicas == 1 and m.partition("payments", 0).replicas == (2, 3)
    assert m.load(2).leaders == 0


def test_a_moved_leader_keeps_leading_from_its_new_broker() -> None:
    m2 = ClusterModel(brokers=brokers(4, zones=2), partitions=[
        Partition(topic="t", partition=0, replicas=(1, 2), leader=1, isr=(1, 2), size_bytes=5)])
    m2.move_replica(0, 1, 3)
    p = m2.partitions[0]
    assert (p.replicas, p.leader, p.isr) == ((3, 2), 3, (3, 2))
    assert m2.load(1).replicas == 0 and m2.load(3).leaders == 1


def test_applying_a_plan_runs_a_preferred_leader_election() -> None:
    m = small()
    plan = Plan(cluster_id="c1", moves=(PartitionMove(topic="payments", partition=0, old_replicas=(2, 3),
                                                      replicas=(1, 2), bytes_to_move=500),))
    m.apply_plan(plan)
    p = m.partition("payments", 0)
    assert p.replicas == (1, 2) and p.leader == 1
    assert m.load(3).replicas == 1 and m.load(1).leaders == 2


def test_broken_assignments_are_refused_with_the_reason() -> None:
    with pytest.raises(ValidationError, match="lists a broker twice"):
        ClusterModel(brokers=brokers(3), partitions=[Partition(topic="t", partition=0, replicas=(1, 1), leader=1)])
    with pytest.raises(ValidationError, match="unknown brokers"):
        ClusterModel(brokers=brokers(3), partitions=[Partition(topic="t", partition=0, replicas=(1, 9), leader=1)])
    with pytest.raises(ValidationError, match="not one of its replicas"):
        ClusterModel(brokers=brokers(3), partitions=[Partition(topic="t", partition=0, replicas=(1, 2), leader=3)])
    m = small()
    with pytest.raises(ValueError, match="cannot move"):
        m.move_replica(0, 1, 2)


def test_the_model_round_trips_through_json_and_prints_a_table() -> None:
    m = synthetic(n_brokers=3, topics=2, partitions=4).with_broker_states({3: BrokerState.DRAINING})
    again = ClusterModel.model_validate_json(m.model_dump_json())
    assert again.assignment() == m.assignment()
    assert [again.load(b) for b in again.broker_ids] == [m.load(b) for b in m.broker_ids]
    assert m.model_dump()["broker_loads"][0]["broker"] == 1
    table = m.describe()
    assert "draining" in table and "8 partitions" in table


def test_allowed_brokers_are_live_and_in_the_tenant_cell() -> None:
    bl = [Broker(id=1, zone="a", cell="c0"), Broker(id=2, zone="b", cell="c1"),
          Broker(id=3, zone="c", cell="c1", state=BrokerState.DRAINING), Broker(id=4, zone="a", cell="c1")]
    m = ClusterModel(brokers=bl, tenant_cells={"lkc-x1": "c1"}, partitions=[
        Partition(topic="lkc-x1_t", partition=0, replicas=(1,), leader=1),
        Partition(topic="other", partition=0, replicas=(1,), leader=1)])
    tenant, other = m.partitions
    assert m.allowed_brokers(tenant) == [2, 4] and m.available_zones(tenant) == {"a", "b"}
    assert m.allowed_brokers(other) == [1, 2, 4]
