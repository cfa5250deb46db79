"""The mothership's level-triggered reconciler.

Each cycle compares three things — what users asked for (logical clusters in the store),
what was decided (physical cluster specs), and what satellites report (the ``status``
topic) — and moves every logical cluster one step on. It keeps nothing in memory that it
cannot rebuild from those three, so a mothership killed at any point finishes the job
after a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from streamplane.capacity import SHARED_CLUSTER_BROKERS, cku_capacity
from streamplane.channel.config import ChannelError
from streamplane.kafka import AdminError
from streamplane.loops.runner import Wakeup, run_loop
from streamplane.models.psc import PhysicalClusterSpec
from streamplane.models.satellite import SatelliteInfo
from streamplane.models.status import ClusterState, ClusterStatus
from streamplane.mothership.cluster_status import cluster_status, reported_by_any
from streamplane.mothership.scheduler import (
    QUARANTINE_BROKERS,
    NoCapacityError,
    SchedulerSettings,
    choose_satellite,
    physical_cluster_spec,
    place_brokers,
    resized_spec,
    spans_satellites,
    tenant_in_cell,
)
from streamplane.mothership.sizing import broker_count, leaving_brokers
from streamplane.mothership.store import (
    ClusterType,
    ConflictError,
    LogicalCluster,
    LogicalClusterStatus,
    NotFoundError,
    Operation,
    OperationStatus,
    PhysicalCluster,
    PhysicalClusterKind,
    Store,
)
from streamplane.mothership.store.ids import physical_cluster_id
from streamplane.tenancy import DEFAULT_CELL

if TYPE_CHECKING:
    from streamplane.loops.balancer.loop import BalanceStatus

log = logging.getLogger(__name__)

CYCLE_S = 1.0
CLUSTER_OPERATIONS = ("create_cluster", "update_cluster", "delete_cluster", "scale_cluster",
                      "quarantine_cluster", "release_cluster")
SCALE = ("scale_cluster",)
CELL_OPERATIONS = ("quarantine_cluster", "release_cluster")
#: the cell a noisy tenant is moved to
QUARANTINE_CELL = "quarantine"


class Publisher(Protocol):
    async def publish(self, psc: PhysicalClusterSpec) -> int: ...
    async def withdraw(self, cluster_id: str, satellite: str) -> int: ...


class Statuses(Protocol):
    def get(self, satellite: str, cluster_id: str) -> ClusterStatus | None: ...
    @property
    def caught_up(self) -> bool: ...


class BalanceView(Protocol):
    """What the balancing loop last saw of a physical cluster (see loops/balancer/loop.py)."""

    def status(self, cluster_id: str) -> BalanceStatus | None: ...


class Directory(Protocol):
    def live(self, max_age_s: float) -> list[SatelliteInfo]: ...
    def all(self) -> list[SatelliteInfo]: ...


#: removes a tenant's topics, users and ACLs from its shared physical cluster
TenantCleaner = Callable[[LogicalCluster, PhysicalCluster], None]
#: makes a tenant's Kafka user and ACLs on its (healthy) shared physical cluster; returns
#: the address its clients use (its gateway's), None while there is none yet
TenantProvisioner = Callable[[LogicalCluster, PhysicalCluster, ClusterStatus], str | None]


def _applied(pc: PhysicalCluster, status: ClusterStatus | None) -> bool:
    """The satellite runs the PSC's current generation, healthy."""
    return (status is not None and status.observed_generation == pc.generation
            and status.status == ClusterState.HEALTHY)


def _ids(ids: list[int]) -> str:
    return ", ".join(map(str, ids))


def _satellites(pc: PhysicalCluster) -> str:
    names = pc.spec.satellites()
    return f"satellite {names[0]}" if len(names) == 1 else f"satellites {', '.join(names)}"


def _moving(balance: BalanceStatus | None) -> str:
    ex = balance.execution if balance is not None else None
    if ex is None or not ex.moves_total:
        return ""
    eta = f", ETA {ex.eta_s:.0f} s" if ex.eta_s is not None else ""
    return (f", {ex.moves_done}/{ex.moves_total} partition moves, "
            f"{ex.bytes_moved / 2**20:.1f} of {ex.bytes_total / 2**20:.1f} MiB moved{eta}")


def _percent(balance: BalanceStatus | None, low: float, high: float) -> float:
    ex = balance.execution if balance is not None else None
    if ex is None or not ex.moves_total:
        return low
    done = ex.bytes_moved / ex.bytes_total if ex.bytes_total else ex.moves_done / ex.moves_total
    return low + (high - low) * min(1.0, done)


@dataclass
class Reconciler:
    store: Store
    publisher: Publisher
    statuses: Statuses
    directory: Directory
    settings: SchedulerSettings = field(default_factory=SchedulerSettings)
    clean_tenant: TenantCleaner | None = None
    balancing: BalanceView | None = None
    provision_tenant: TenantProvisioner | None = None
    _published: dict[str, int] = field(default_factory=dict)
    _withdrawn: set[str] = field(default_factory=set)
    _seen: dict[str, tuple[str, int | None, str | None]] = field(default_factory=dict)
    _wakeup: Wakeup = field(default_factory=Wakeup)

    def wake(self) -> None:
        """Run the next cycle now (call from the event loop's thread)."""
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        await run_loop(self.run_cycle, stop, CYCLE_S, log, "reconciler", wakeup=self._wakeup)

    async def run_cycle(self) -> str:
        if not self.statuses.caught_up:
            return ""  # deciding on a half-read status topic could declare live clusters gone
        said: list[str] = []
        await asyncio.to_thread(self._sync_satellites)
        pcs = {pc.id: pc for pc in await asyncio.to_thread(self.store.physical_clusters.list)}
        said += await self._sync_physical(pcs)
        for lc in await asyncio.to_thread(self.store.logical_clusters.list):
            try:
                sentence = await self._step(lc, pcs)
            except ConflictError:
                continue  # the user changed it meanwhile; the next cycle sees the new state
            except ChannelError as exc:
                sentence = f"cluster {lc.name}: the control channel failed: {exc}"
            if sentence:
                said.append(sentence)
        return "; ".join(said)

    # ---- satellites and physical clusters -------------------------------------------

    def _sync_satellites(self) -> None:
        """Record new satellites, and the zone and capacity a satellite restarted with."""
        known = {s.name: (s.zone, s.capacity) for s in self.store.satellites.list()}
        for info in self.directory.all():
            capacity = {"max_brokers": info.max_brokers, "memory_mb": info.memory_mb}
            before = known.get(info.name)
            if before != (info.zone, capacity):
                self.store.satellites.upsert(info.name, zone=info.zone, capacity=capacity)
                if before is not None:
                    log.info("satellite %s now reports zone %s and capacity %s (was zone %s, %s)",
                             info.name, info.zone, capacity, *before)

    async def _sync_physical(self, pcs: dict[str, PhysicalCluster]) -> list[str]:
        said = []
        for pc in pcs.values():
            status = cluster_status(self.statuses, pc.spec)
            if pc.deleting:
                if pc.id not in self._withdrawn:
                    await self.publisher.withdraw(pc.id, pc.satellite)
                    self._withdrawn.add(pc.id)
                    said.append(f"asked satellite {pc.satellite} to delete {pc.id}")
                continue
            if self._published.get(pc.id) == pc.generation and status is not None:
                pinned = await asyncio.to_thread(self._pin_controller_ports, pc, status)
                if pinned:
                    said.append(pinned)
                    pc = self.store.physical_clusters.get(pc.id)
            if self._published.get(pc.id) != pc.generation:
                await self.publisher.publish(pc.spec)
                self._published[pc.id] = pc.generation
                said.append(f"published {pc.id} generation {pc.generation} to "
                            f"{_satellites(pc)}")
            if status is not None:
                seen = (status.status.value, status.observed_generation, status.bootstrap)
                if self._seen.get(pc.id) != seen:
                    await asyncio.to_thread(self.store.physical_clusters.record_status, pc.id, status)
                    self._seen[pc.id] = seen
        return said

    def _pin_controller_ports(self, pc: PhysicalCluster, status: ClusterStatus) -> str | None:
        """Copy the controller ports satellites chose into the PSC of a cluster over several
        satellites: every node's config lists every voter, and each satellite learns the
        other satellites' voters only from the PSC."""
        if len(pc.spec.satellites()) <= 1:
            return None
        reported = {n.id: n.controller_port for n in status.brokers if n.controller_port}
        controllers = set(pc.spec.controller_ids())
        brokers = []
        for b in pc.spec.brokers:
            port = reported.get(b.id)
            if b.id in controllers and b.controller_port is None and port:
                b = b.model_copy(update={"controller_port": port})
            brokers.append(b)
        if tuple(brokers) == pc.spec.brokers:
            return None
        updated = self.store.physical_clusters.update_spec(
            pc.spec.model_copy(update={"brokers": tuple(brokers)}), expected_generation=pc.generation)
        return f"{pc.id}: recorded the controller ports its satellites chose (generation {updated.generation})"

    def _placed(self) -> dict[str, list[int]]:
        """Satellite name -> how many brokers it runs of each cluster placed on it."""
        placed: dict[str, list[int]] = {}
        for pc in self.store.physical_clusters.list():
            per = Counter(pc.spec.node_satellite(b.id) or pc.satellite for b in pc.spec.brokers)
            for name, count in per.items():
                placed.setdefault(name, []).append(count)
        return placed

    def _live(self) -> list[SatelliteInfo]:
        return list(self.directory.live(self.settings.satellite_max_age_s))

    def _place(self, brokers: int, zones: int, kafka_version: str, kind: PhysicalClusterKind,
               ) -> PhysicalCluster:
        live = self._live()
        if kind == PhysicalClusterKind.SHARED and len(live) > 1:  # multi-zone when three zones exist
            zones = 3 if len({s.zone for s in live}) >= 3 else 1
        spread: list[SatelliteInfo] = []
        if len(live) > 1:
            spread = place_brokers(live, self._placed(), brokers, zones)
            sat = spread[0]
        else:  # one host: rack labels stand in for zones
            sat = choose_satellite(live, self._placed(), brokers)
        spec = physical_cluster_spec(physical_cluster_id(), sat, brokers, zones, kafka_version,
                                     self.settings, spread)
        return self.store.physical_clusters.create(spec, kind=kind)

    def _more_brokers(self, pc: PhysicalCluster, count: int, continuing: bool = True) -> list[SatelliteInfo]:
        """Where ``count`` more brokers of a cluster over several satellites go: its zones,
        continuing its rotation (or from its first zone, for a new cell); [] for a cluster
        on one satellite."""
        if not spans_satellites(pc.spec):
            return []
        ordered = sorted(pc.spec.brokers, key=lambda b: b.id)
        zones = list(dict.fromkeys(b.zone for b in ordered))
        on = [pc.spec.node_satellite(b.id) or "" for b in ordered]
        return place_brokers(self._live(), self._placed(), count, len(zones), avoid=zones,
                             start=len(ordered) if continuing else 0, cluster=on)

    # ---- one logical cluster ----------------------------------------------------------

    async def _step(self, lc: LogicalCluster, pcs: dict[str, PhysicalCluster]) -> str:
        if lc.status == LogicalClusterStatus.DELETING:
            return await self._delete_step(lc, pcs)
        if lc.status in (LogicalClusterStatus.FAILED, LogicalClusterStatus.DELETED):
            return ""
        pc = pcs.get(lc.physical_cluster_id) if lc.physical_cluster_id else None
        said = ""
        if pc is None:
            said, lc = await asyncio.to_thread(self._assign, lc, pcs)
            pc = pcs.get(lc.physical_cluster_id) if lc.physical_cluster_id else None
            if pc is None or pc.generation != self._published.get(pc.id):
                return said  # a new physical cluster is published next cycle
        status = cluster_status(self.statuses, pc.spec)
        scaled = await asyncio.to_thread(self._scale, lc, pc, status)
        if scaled is None:
            scaled = await asyncio.to_thread(self._move_cell, lc, pc, status)
        if scaled is not None:
            return "; ".join(x for x in (said, scaled) if x)
        followed = await asyncio.to_thread(self._follow, lc, pc, status)
        return "; ".join(x for x in (said, followed) if x)

    def _applying(self, lc: LogicalCluster, pc: PhysicalCluster, status: ClusterStatus | None,
                  what: str) -> str:
        registered = sum(1 for b in status.brokers if b.registered) if status else 0
        total = len(status.brokers) if status else len(pc.spec.brokers)
        return self._set(lc, lc.status, f"{what}: {_satellites(pc)} "
                         f"{'is' if len(pc.spec.satellites()) == 1 else 'are'} applying the change "
                         f"({registered}/{total} brokers registered)", 15.0)

    # ---- moving a tenant between cells ------------------------------------------------

    def _move_cell(self, lc: LogicalCluster, pc: PhysicalCluster, status: ClusterStatus | None) -> str | None:
        """One step of a quarantine (or release): done once the balancer has seen, at the
        PSC's generation, every replica of every tenant inside its cell."""
        ops = self._open_operations(lc, CELL_OPERATIONS) if lc.status == LogicalClusterStatus.RUNNING else []
        if not ops:
            return None
        cell = str((ops[0].request or {}).get("cell", pc.spec.tenant_cells.get(lc.id, DEFAULT_CELL)))
        what = f"moving to cell {cell}"
        if pc.spec.tenant_cells.get(lc.id, DEFAULT_CELL) != cell:
            sat = self.store.satellites.get(pc.satellite)
            fresh = any(b.cell == cell for b in pc.spec.brokers) or cell == DEFAULT_CELL
            spread = [] if fresh else self._more_brokers(pc, QUARANTINE_BROKERS, continuing=False)
            pc = self.store.physical_clusters.update_spec(
                tenant_in_cell(pc.spec, lc.id, cell, sat.zone, spread), expected_generation=pc.generation)
            self._set(lc, lc.status, what, 10.0)
            return f"cluster {lc.name}: {pc.id} places it in cell {cell} (generation {pc.generation})"
        if not _applied(pc, status):
            return self._applying(lc, pc, status, what)
        balance = self.balancing.status(pc.id) if self.balancing is not None else None
        inside = (balance is not None and balance.generation == pc.generation and balance.execution is None
                  and balance.evaluated_at is not None and balance.imbalance.get("cell-containment", 1) == 0)
        if not inside:
            return self._set(lc, lc.status, f"{what}{_moving(balance)}", _percent(balance, 30.0, 95.0))
        said = self._set(lc, LogicalClusterStatus.RUNNING, "", 100.0)
        self._finish(lc, OperationStatus.SUCCEEDED, kinds=CELL_OPERATIONS)
        return said or f"cluster {lc.name}: now in cell {cell}"

    # ---- scaling a dedicated cluster ----------------------------------------------------

    def _scale(self, lc: LogicalCluster, pc: PhysicalCluster, status: ClusterStatus | None) -> str | None:
        """One step of a CKU change, or None when the cluster is not being scaled.

        Out: the PSC gains brokers, the satellite starts them, the balancer moves load onto
        them. In: the balancer drains the brokers that go (highest ids), and only once they
        hold nothing does the PSC drop them; the satellite then stops and unregisters them.
        The scale operation ends when the cluster is healthy at its final size and the
        balancer has balanced that generation.
        """
        if lc.type != ClusterType.DEDICATED or lc.cku is None or lc.status != LogicalClusterStatus.RUNNING:
            return None
        target = broker_count(lc.cku)
        ids = sorted(b.id for b in pc.spec.brokers)
        scaling = bool(self._open_operations(lc, SCALE))
        if len(ids) == target and not scaling:
            return None
        what = f"scaling to {lc.cku} CKU ({target} brokers)"
        if not _applied(pc, status):
            return self._applying(lc, pc, status, what)
        balance = self.balancing.status(pc.id) if self.balancing is not None else None
        if len(ids) < target:
            sat = self.store.satellites.get(pc.satellite)
            spread = self._more_brokers(pc, target - len(ids))
            pc = self.store.physical_clusters.update_spec(
                resized_spec(pc.spec, target, sat.zone, lc.zones, spread), expected_generation=pc.generation)
            added = sorted({b.id for b in pc.spec.brokers} - set(ids))
            self._set(lc, lc.status, f"{what}: starting broker(s) {_ids(added)}", 10.0)
            return f"cluster {lc.name}: adding broker(s) {_ids(added)} to {pc.id} (generation {pc.generation})"
        if len(ids) > target:
            leaving = leaving_brokers(ids, lc.cku)
            drained = (balance is not None and balance.generation == pc.generation
                       and balance.evaluated_at is not None and balance.execution is None
                       and {b.id for b in balance.brokers} >= set(leaving) and balance.holds(leaving) == 0)
            if not drained:
                return self._set(lc, lc.status, f"{what}: draining broker(s) {_ids(leaving)}"
                                 f"{_moving(balance)}", _percent(balance, 10.0, 70.0))
            sat = self.store.satellites.get(pc.satellite)
            pc = self.store.physical_clusters.update_spec(
                resized_spec(pc.spec, target, sat.zone, lc.zones), expected_generation=pc.generation)
            self._set(lc, lc.status, f"{what}: stopping drained broker(s) {_ids(leaving)}", 75.0)
            return f"cluster {lc.name}: removing drained broker(s) {_ids(leaving)} from {pc.id}"
        if balance is None or balance.balanced_generation != pc.generation:
            return self._set(lc, lc.status, f"{what}: balancing load{_moving(balance)}",
                             _percent(balance, 30.0, 95.0))
        newest = next(iter(self._open_operations(lc, SCALE)), None)
        if newest is not None and newest.request and newest.request.get("cku") != lc.cku:
            return ""  # asked for another size after this cycle read the cluster: the next one sees it
        said = self._set(lc, LogicalClusterStatus.RUNNING, "", 100.0)
        self._finish(lc, OperationStatus.SUCCEEDED, kinds=SCALE)
        return said or f"cluster {lc.name}: scaled to {lc.cku} CKU"

    def _assign(self, lc: LogicalCluster, pcs: dict[str, PhysicalCluster]) -> tuple[str, LogicalCluster]:
        try:
            if lc.type == ClusterType.DEDICATED:
                assert lc.cku is not None
                pc = self._place(cku_capacity(lc.cku).brokers, lc.zones, lc.kafka_version,
                                 PhysicalClusterKind.DEDICATED)
            else:
                pc = self._shared_cluster(lc, pcs)
        except NoCapacityError as exc:
            reason = f"waiting for capacity: {exc}"
            if lc.status_reason != reason:
                lc = self.store.logical_clusters.set_status(
                    lc.id, lc.status, reason, expected_generation=lc.generation)
                return f"cluster {lc.name}: {reason}", lc
            return "", lc
        lc = self.store.logical_clusters.set_status(
            lc.id, lc.status, f"placed on {_satellites(pc)}",
            physical_cluster_id=pc.id, expected_generation=lc.generation)
        pcs[pc.id] = pc
        self._progress(lc, 20.0)
        return f"cluster {lc.name}: placed as {pc.id} on {_satellites(pc)}", lc

    def _shared_cluster(self, lc: LogicalCluster, pcs: dict[str, PhysicalCluster]) -> PhysicalCluster:
        for pc in pcs.values():
            if (pc.kind == PhysicalClusterKind.SHARED and not pc.deleting
                    and pc.spec.kafka_version == lc.kafka_version):
                return pc
        return self._place(SHARED_CLUSTER_BROKERS, 3, lc.kafka_version, PhysicalClusterKind.SHARED)

    def _follow(self, lc: LogicalCluster, pc: PhysicalCluster, status: ClusterStatus | None) -> str:
        if status is None or status.generation != pc.generation:
            return self._set(lc, LogicalClusterStatus.PROVISIONING if lc.status ==
                             LogicalClusterStatus.PROVISIONING else lc.status,
                             f"waiting for {_satellites(pc)} to take {pc.id}", 30.0)
        if status.status == ClusterState.HEALTHY and status.observed_generation == pc.generation:
            bootstrap = status.bootstrap
            if pc.kind == PhysicalClusterKind.SHARED and self.provision_tenant is not None:
                try:
                    bootstrap = self.provision_tenant(lc, pc, status)
                except AdminError as exc:
                    return self._set(lc, lc.status, f"setting up its Kafka user failed: {exc}", None)
                if bootstrap is None:
                    return self._set(lc, lc.status, f"waiting for the gateway of {pc.id}", 90.0)
            said = self._set(lc, LogicalClusterStatus.RUNNING, "", 100.0, bootstrap=bootstrap)
            self._finish(lc, OperationStatus.SUCCEEDED, kinds=("create_cluster", "update_cluster"))
            return said
        if status.status == ClusterState.FAILED:
            reason = status.last_error or status.message or "the satellite reported a failure"
            said = self._set(lc, LogicalClusterStatus.FAILED, reason, None)
            self._finish(lc, OperationStatus.FAILED, reason)
            return said
        if lc.status == LogicalClusterStatus.RUNNING:
            reason = f"degraded: {status.message or status.status.value}"
            return self._set(lc, LogicalClusterStatus.RUNNING, reason, None)
        registered = sum(1 for b in status.brokers if b.registered)
        progress = 40.0 + 50.0 * registered / max(1, len(status.brokers))
        return self._set(lc, lc.status, f"{status.status.value.lower()}: {registered}/"
                         f"{len(status.brokers)} brokers registered", progress)

    async def _delete_step(self, lc: LogicalCluster, pcs: dict[str, PhysicalCluster]) -> str:
        pc = pcs.get(lc.physical_cluster_id) if lc.physical_cluster_id else None
        if pc is not None and pc.kind == PhysicalClusterKind.SHARED:
            if self.clean_tenant is not None:
                try:
                    await asyncio.to_thread(self.clean_tenant, lc, pc)
                except AdminError as exc:  # e.g. a group whose consumers have not left yet
                    return f"cluster {lc.name}: removing it from {pc.id} failed, retrying: {exc}"
            pc = None
        elif pc is not None:
            if not pc.deleting:
                await asyncio.to_thread(self.store.physical_clusters.mark_deleting, pc.id)
                return f"cluster {lc.name}: deleting physical cluster {pc.id}"
            if reported_by_any(self.statuses, pc.spec):
                await asyncio.to_thread(self._progress, lc, 50.0)
                return ""  # the satellite has not confirmed the deletion yet
            await asyncio.to_thread(self.store.physical_clusters.remove, pc.id)
            self._published.pop(pc.id, None)
            self._withdrawn.discard(pc.id)
        await asyncio.to_thread(self._deleted, lc)
        return f"cluster {lc.name}: deleted"

    def _deleted(self, lc: LogicalCluster) -> None:
        self.store.logical_clusters.set_status(lc.id, LogicalClusterStatus.DELETED, "",
                                               expected_generation=lc.generation)
        self._finish(lc, OperationStatus.SUCCEEDED, kinds=("delete_cluster",))
        self._finish(lc, OperationStatus.FAILED, "the cluster was deleted")

    # ---- bookkeeping ----------------------------------------------------------------

    def _set(self, lc: LogicalCluster, status: LogicalClusterStatus, reason: str,
             progress: float | None, bootstrap: str | None = None) -> str:
        if progress is not None:
            self._progress(lc, progress)
        changed = lc.status != status or lc.status_reason != reason or (
            bootstrap is not None and lc.bootstrap != bootstrap)
        if not changed:
            return ""
        kwargs = {"bootstrap": bootstrap} if bootstrap is not None else {}
        self.store.logical_clusters.set_status(lc.id, status, reason,
                                               expected_generation=lc.generation, **kwargs)
        return f"cluster {lc.name}: {status.value}" + (f" ({reason})" if reason else "")

    def _open_operations(self, lc: LogicalCluster,
                         kinds: tuple[str, ...] = CLUSTER_OPERATIONS) -> list[Operation]:
        return self.store.operations.unfinished(lc.id, kinds)

    def _progress(self, lc: LogicalCluster, progress: float) -> None:
        for op in self._open_operations(lc):
            try:
                if op.progress < progress or op.status == OperationStatus.PENDING:
                    self.store.operations.update(op.id, status=OperationStatus.RUNNING,
                                                 progress=max(op.progress, progress))
            except (ConflictError, NotFoundError):
                continue

    def _finish(self, lc: LogicalCluster, status: OperationStatus, error: str | None = None,
                kinds: tuple[str, ...] = CLUSTER_OPERATIONS) -> None:
        for op in self._open_operations(lc, kinds):
            try:
                self.store.operations.update(op.id, status=status, error=error)
            except (ConflictError, NotFoundError):
                continue
