"""The reconciler's scale and cell decisions, one cycle at a time, over a real SQLite store
with fake satellites and a fake balancer: no Kafka.

A scale-out grows the PSC at once; a scale-in waits for the balancer to drain the leaving
(highest-id) brokers at the PSC's generation before it drops them; either operation ends
only when the satellite runs the new generation healthy and the balancer has balanced it.
A quarantine request records intent only: the reconciler writes the PSC.
"""

from __future__ import annotations

from datetime import timedelta

from streamplane.models.status import ClusterState
from streamplane.mothership.store import ClusterType, LogicalCluster, LogicalClusterStatus, OperationStatus
from streamplane.mothership.store.testing import ManualClock
from streamplane.tenancy import DEFAULT_CELL

from .conftest import BrokerLoadOut, World, balance_status, broker_load, execution


def ids(world: World, lc: LogicalCluster) -> list[int]:
    return sorted(b.id for b in world.pc(lc.id).spec.brokers)


def test_a_new_cluster_is_placed_published_and_runs_once_healthy(world: World) -> None:
    lc = world.create("orders", ClusterType.DEDICATED, cku=2, zones=3)
    said = world.cycle()
    pc = world.pc(lc.id)
    assert said == f"cluster orders: placed as {pc.id} on satellite sat-a"
    assert world.publisher.published == []  # the next cycle publishes it
    said = world.cycle()
    assert said.startswith(f"published {pc.id} generation 1 to satellite sat-a")
    assert world.publisher.last(pc.id) == pc.spec
    assert [(b.id, b.zone) for b in pc.spec.brokers] == [
        (1, "zone-a-a"), (2, "zone-a-b"), (3, "zone-a-c"), (4, "zone-a-a")]
    world.healthy(lc.id, state=ClusterState.STARTING)
    world.cycle()
    assert world.lc(lc.id).status == LogicalClusterStatus.PROVISIONING
    world.healthy(lc.id)
    assert world.cycle() == "cluster orders: RUNNING"
    create_op = world.store.operations.list(target_id=lc.id, kind="create_cluster")[0]
    assert create_op.status == OperationStatus.SUCCEEDED


def test_nothing_is_decided_on_a_status_topic_not_read_to_the_end(world: World) -> None:
    world.statuses.is_caught_up = False
    lc = world.create("orders", ClusterType.DEDICATED, cku=1)
    assert world.cycle() == ""
    assert world.lc(lc.id).physical_cluster_id is None


# ---- scale-out ----------------------------------------------------------------------------


def test_scale_out_adds_the_next_ids_then_waits_for_health_and_balance(world: World) -> None:
    lc = world.running("orders", ClusterType.DEDICATED, cku=1, zones=3)
    pc = world.pc(lc.id)
    assert (ids(world, lc), pc.generation) == ([1, 2, 3], 1)
    op = world.scale(world.lc(lc.id), 3)

    said = world.cycle()
    pc = world.pc(lc.id)
    assert said == f"cluster orders: adding broker(s) 4, 5 to {pc.id} (generation 2)"
    assert pc.generation == 2 and pc.spec.generation == 2
    assert [(b.id, b.zone) for b in pc.spec.brokers] == [
        (1, "zone-a-a"), (2, "zone-a-b"), (3, "zone-a-c"), (4, "zone-a-a"), (5, "zone-a-b")]
    assert world.lc(lc.id).status_reason == "scaling to 3 CKU (5 brokers): starting broker(s) 4, 5"
    assert (world.op(op).status, world.op(op).progress) == (OperationStatus.RUNNING, 10.0)

    said = world.cycle()  # published; the satellite still reports generation 1
    assert f"published {pc.id} generation 2 to satellite sat-a" in said
    assert world.publisher.last(pc.id) == pc.spec
    assert world.lc(lc.id).status_reason == (
        "scaling to 3 CKU (5 brokers): satellite sat-a is applying the change (3/3 brokers registered)")
    assert ids(world, lc) == [1, 2, 3, 4, 5]  # nothing more is added while it applies

    # balanced at the new generation, but the satellite has not applied it: not done
    world.balance.set(balance_status(pc.id, generation=2, balanced_generation=2))
    world.cycle()
    assert world.op(op).status == OperationStatus.RUNNING
    world.balance.by_cluster.clear()

    world.healthy(lc.id)  # generation 2 applied, healthy
    world.balance.set(balance_status(pc.id, generation=2, balanced_generation=1,
                                     running=execution(2, 8, bytes_moved=2 * 2**20, bytes_total=8 * 2**20,
                                                       eta_s=12)))
    assert world.cycle() == ("cluster orders: RUNNING (scaling to 3 CKU (5 brokers): balancing load, "
                             "2/8 partition moves, 2.0 of 8.0 MiB moved, ETA 12 s)")
    assert world.op(op).status == OperationStatus.RUNNING
    assert world.op(op).progress == 30.0 + 65.0 * 0.25

    world.balance.set(balance_status(pc.id, generation=2, balanced_generation=2))
    assert world.cycle() == "cluster orders: RUNNING"
    lc = world.lc(lc.id)
    assert (lc.status, lc.status_reason, lc.cku) == (LogicalClusterStatus.RUNNING, "", 3)
    assert (world.op(op).status, world.op(op).progress) == (OperationStatus.SUCCEEDED, 100.0)
    assert world.cycle() == ""  # and it stays put
    assert world.pc(lc.id).generation == 2


def test_scale_out_waits_while_the_satellite_has_not_applied_the_current_psc(world: World) -> None:
    lc = world.running("orders", ClusterType.DEDICATED, cku=1)
    world.healthy(lc.id, state=ClusterState.DEGRADED, registered=False)
    op = world.scale(world.lc(lc.id), 2)
    world.cycle()
    assert ids(world, lc) == [1, 2, 3]
    assert world.lc(lc.id).status_reason == (
        "scaling to 2 CKU (4 brokers): satellite sat-a is applying the change (0/3 brokers registered)")
    assert world.op(op).progress == 15.0
    world.healthy(lc.id)
    assert "adding broker(s) 4 to" in world.cycle()
    assert ids(world, lc) == [1, 2, 3, 4]


# ---- scale-in ------------------------------------------------------------------------------


def test_scale_in_keeps_the_brokers_until_the_balancer_has_drained_the_leaving_ones(world: World) -> None:
    lc = world.running("orders", ClusterType.DEDICATED, cku=3, zones=3)
    pc = world.pc(lc.id)
    assert (ids(world, lc), pc.generation) == ([1, 2, 3, 4, 5], 1)
    op = world.scale(world.lc(lc.id), 1)
    draining = "scaling to 1 CKU (3 brokers): draining broker(s) 4, 5"

    # the balancer has not looked yet
    assert world.cycle() == f"cluster orders: RUNNING ({draining})"
    assert (world.pc(lc.id).generation, ids(world, lc)) == (1, [1, 2, 3, 4, 5])
    assert (world.op(op).status, world.op(op).progress) == (OperationStatus.RUNNING, 10.0)

    def loads(four: int, five: int) -> list[BrokerLoadOut]:
        return [broker_load(i, replicas=3, leaders=1) for i in (1, 2, 3)] + [
            broker_load(4, replicas=four, leaders=min(four, 1)), broker_load(5, replicas=five)]

    # moving replicas off 4 and 5
    world.balance.set(balance_status(pc.id, generation=1, brokers=loads(2, 1),
                                     running=execution(3, 6, eta_s=None)))
    world.cycle()
    assert world.lc(lc.id).status_reason == f"{draining}, 3/6 partition moves, 0.0 of 0.0 MiB moved"
    assert world.op(op).progress == 10.0 + 60.0 * 0.5
    assert world.pc(lc.id).generation == 1

    # empty, but the plan has not finished
    world.balance.set(balance_status(pc.id, generation=1, brokers=loads(0, 0), running=execution(6, 6)))
    world.cycle()
    assert world.pc(lc.id).generation == 1
    # empty, finished, but seen at another generation of the PSC
    world.balance.set(balance_status(pc.id, generation=0, brokers=loads(0, 0)))
    world.cycle()
    assert world.pc(lc.id).generation == 1
    # empty and finished, but never evaluated
    world.balance.set(balance_status(pc.id, generation=1, brokers=loads(0, 0), evaluated_at=None))
    world.cycle()
    assert world.pc(lc.id).generation == 1
    # a view that does not show the leaving brokers proves nothing about them
    world.balance.set(balance_status(pc.id, generation=1, brokers=loads(0, 0)[:3]))
    world.cycle()
    assert world.pc(lc.id).generation == 1
    # a leadership left on a leaving broker still counts
    world.balance.set(balance_status(pc.id, generation=1, brokers=[
        *loads(0, 0)[:3], broker_load(4), broker_load(5, leaders=1)]))
    world.cycle()
    assert (world.pc(lc.id).generation, ids(world, lc)) == (1, [1, 2, 3, 4, 5])
    assert world.lc(lc.id).status_reason == draining
    assert world.op(op).status == OperationStatus.RUNNING

    # drained at the PSC's generation: exactly the highest ids go
    world.balance.set(balance_status(pc.id, generation=1, brokers=loads(0, 0)))
    said = world.cycle()
    pc = world.pc(lc.id)
    assert said == f"cluster orders: removing drained broker(s) 4, 5 from {pc.id}"
    assert pc.generation == 2
    assert [(b.id, b.zone) for b in pc.spec.brokers] == [(1, "zone-a-a"), (2, "zone-a-b"), (3, "zone-a-c")]
    assert world.lc(lc.id).status_reason == "scaling to 1 CKU (3 brokers): stopping drained broker(s) 4, 5"
    assert world.op(op).progress == 75.0

    said = world.cycle()
    assert f"published {pc.id} generation 2 to satellite sat-a" in said
    assert world.publisher.last(pc.id) == pc.spec
    assert world.op(op).status == OperationStatus.RUNNING  # the satellite has not applied it

    # applied: 5 brokers still report while the satellite unregisters 4 and 5
    world.healthy(lc.id, broker_ids=[1, 2, 3])
    world.balance.set(balance_status(pc.id, generation=2, balanced_generation=1,
                                     brokers=[broker_load(i, 3, 1) for i in (1, 2, 3)]))
    world.cycle()
    assert world.op(op).status == OperationStatus.RUNNING
    assert world.lc(lc.id).status_reason == "scaling to 1 CKU (3 brokers): balancing load"

    world.balance.set(balance_status(pc.id, generation=2, balanced_generation=2))
    assert world.cycle() == "cluster orders: RUNNING"
    lc = world.lc(lc.id)
    assert (lc.status, lc.status_reason, lc.cku) == (LogicalClusterStatus.RUNNING, "", 1)
    assert world.op(op).status == OperationStatus.SUCCEEDED
    assert ids(world, lc) == [1, 2, 3]


def test_scales_one_after_another_each_end_at_their_own_size(world: World) -> None:
    lc = world.running("orders", ClusterType.DEDICATED, cku=1)
    pc = world.pc(lc.id)
    for cku, generation, brokers in ((2, 2, [1, 2, 3, 4]), (3, 3, [1, 2, 3, 4, 5]), (2, 4, [1, 2, 3, 4])):
        op = world.scale(world.lc(lc.id), cku)
        if cku == 2 and generation == 4:  # scale-in: drain broker 5 first
            world.balance.set(balance_status(pc.id, generation=3, brokers=[
                broker_load(i, replicas=0 if i == 5 else 2) for i in range(1, 6)]))
        world.cycle()  # the PSC changes
        world.cycle()  # and is published
        assert (world.pc(lc.id).generation, ids(world, lc)) == (generation, brokers)
        world.healthy(lc.id)
        world.balance.set(balance_status(pc.id, generation=generation, balanced_generation=generation))
        assert world.cycle() == "cluster orders: RUNNING"
        assert world.op(op).status == OperationStatus.SUCCEEDED
        assert world.lc(lc.id).cku == cku


def test_a_second_scale_request_during_the_first_ends_both_at_the_newer_size(
        world: World, clock: ManualClock) -> None:
    lc = world.running("orders", ClusterType.DEDICATED, cku=1)
    first = world.scale(world.lc(lc.id), 2)
    world.cycle()  # adds broker 4
    world.cycle()  # publishes generation 2
    world.healthy(lc.id)
    pc = world.pc(lc.id)
    clock.advance(timedelta(seconds=5))  # the second request comes later
    with world.store.transaction() as tx:
        tx.logical_clusters.update(lc.id, expected_generation=world.lc(lc.id).generation, cku=3)
        second = tx.operations.create("scale_cluster", lc.id, request={"from_cku": 2, "cku": 3})
    assert "adding broker(s) 5" in world.cycle()
    world.cycle()
    world.healthy(lc.id)
    world.balance.set(balance_status(pc.id, generation=3, balanced_generation=3))
    world.cycle()
    assert ids(world, lc) == [1, 2, 3, 4, 5]
    assert world.op(first).status == world.op(second).status == OperationStatus.SUCCEEDED


def test_basic_clusters_are_not_scaled(world: World) -> None:
    lc = world.running("small", ClusterType.BASIC)
    world.store.operations.create("scale_cluster", lc.id, request={"cku": 2})
    world.cycle()
    assert ids(world, lc) == [1, 2, 3]
    assert world.pc(lc.id).generation == 1


# ---- cells ---------------------------------------------------------------------------------


def test_quarantine_writes_the_psc_with_a_new_cell_and_ends_once_the_tenant_is_inside(world: World) -> None:
    noisy = world.running("noisy", ClusterType.BASIC)
    quiet = world.running("quiet", ClusterType.STANDARD)
    pc = world.pc(noisy.id)
    assert world.pc(quiet.id).id == pc.id  # both tenants of one shared cluster
    assert (pc.kind.value, ids(world, noisy), pc.spec.tenant_cells) == ("shared", [1, 2, 3], {})
    op = world.store.operations.create("quarantine_cluster", noisy.id, request={"cell": "quarantine"})
    assert world.pc(noisy.id).generation == 1  # the request alone changes no PSC

    said = world.cycle()
    pc = world.pc(noisy.id)
    assert said == f"cluster noisy: {pc.id} places it in cell quarantine (generation 2)"
    assert pc.spec.tenant_cells == {noisy.id: "quarantine"}
    assert [(b.id, b.zone, b.cell) for b in pc.spec.brokers] == [
        (1, "zone-a-a", DEFAULT_CELL), (2, "zone-a-b", DEFAULT_CELL), (3, "zone-a-c", DEFAULT_CELL),
        (4, "zone-a-a", "quarantine"), (5, "zone-a-b", "quarantine"), (6, "zone-a-c", "quarantine")]
    assert world.lc(noisy.id).status_reason == "moving to cell quarantine"
    assert (world.op(op).status, world.op(op).progress) == (OperationStatus.RUNNING, 10.0)

    said = world.cycle()
    assert f"published {pc.id} generation 2 to satellite sat-a" in said
    assert world.publisher.last(pc.id) == pc.spec
    assert world.pc(noisy.id).generation == 2  # the cell is added once

    world.healthy(noisy.id)
    world.balance.set(balance_status(pc.id, generation=2, imbalance={"cell-containment": 0.4},
                                     running=execution(1, 4)))
    world.cycle()
    assert world.lc(noisy.id).status_reason == "moving to cell quarantine, 1/4 partition moves, 0.0 of 0.0 MiB moved"
    assert world.op(op).status == OperationStatus.RUNNING
    # contained, but seen at the old generation
    world.balance.set(balance_status(pc.id, generation=1, imbalance={"cell-containment": 0.0}))
    world.cycle()
    assert world.op(op).status == OperationStatus.RUNNING

    world.balance.set(balance_status(pc.id, generation=2, imbalance={"cell-containment": 0.0}))
    said = world.cycle()
    assert "cluster noisy: RUNNING" in said
    assert world.op(op).status == OperationStatus.SUCCEEDED
    lc = world.lc(noisy.id)
    assert (lc.status, lc.status_reason) == (LogicalClusterStatus.RUNNING, "")
    assert world.lc(quiet.id).status == LogicalClusterStatus.RUNNING
    assert world.pc(noisy.id).spec.tenant_cells == {noisy.id: "quarantine"}

    # release: the tenant goes back to the default cell; the quarantine brokers stay
    release = world.store.operations.create("release_cluster", noisy.id, request={"cell": DEFAULT_CELL})
    said = world.cycle()
    pc = world.pc(noisy.id)
    assert said == f"cluster noisy: {pc.id} places it in cell {DEFAULT_CELL} (generation 3)"
    assert pc.spec.tenant_cells == {}
    assert len(pc.spec.brokers) == 6
    world.cycle()
    world.healthy(noisy.id)
    world.balance.set(balance_status(pc.id, generation=3, imbalance={"cell-containment": 0.0}))
    world.cycle()
    assert world.op(release).status == OperationStatus.SUCCEEDED


def test_a_second_quarantined_tenant_joins_the_existing_cell(world: World) -> None:
    one = world.running("one", ClusterType.BASIC)
    two = world.running("two", ClusterType.BASIC)
    world.store.operations.create("quarantine_cluster", one.id, request={"cell": "quarantine"})
    world.cycle()
    world.store.operations.create("quarantine_cluster", two.id, request={"cell": "quarantine"})
    world.cycle()
    pc = world.pc(two.id)
    assert pc.spec.tenant_cells == {one.id: "quarantine", two.id: "quarantine"}
    assert [b.id for b in pc.spec.brokers if b.cell == "quarantine"] == [4, 5, 6]
