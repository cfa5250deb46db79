"""The satellite agent: owns a data directory and one worker per physical cluster."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable

import psutil

from streamplane.channel.source import DesiredStateSource, StatusSink
from streamplane.engine.distribution import EngineResolver
from streamplane.files import write_json
from streamplane.models.satellite import SatelliteInfo
from streamplane.models.status import ClusterState
from streamplane.proc import daemon
from streamplane.proc.daemon import AlreadyRunningError
from streamplane.satellite.cluster import SHUTDOWN_GRACE_S, ClusterWorker
from streamplane.satellite.kafka.interface import KafkaFactory
from streamplane.satellite.kafka.local import LocalKafkaCluster
from streamplane.satellite.layout import SatelliteLayout
from streamplane.satellite.ports import PortAllocator
from streamplane.tenancy import SYSTEM_CLUSTER_ID

log = logging.getLogger(__name__)

CONVERGING_INTERVAL_S = 0.5
STEADY_INTERVAL_S = 2.0
DISPATCH_INTERVAL_S = 1.0
ANNOUNCE_INTERVAL_S = 5.0
#: what stopping the system cluster may take, after the others (see ``shutdown``)
SYSTEM_SHUTDOWN_GRACE_S = 8.0
#: the longest a satellite takes to stop every process it runs
STOP_BUDGET_S = SHUTDOWN_GRACE_S + SYSTEM_SHUTDOWN_GRACE_S


SatelliteBusyError = AlreadyRunningError


def exclusive(layout: SatelliteLayout) -> contextlib.AbstractContextManager[None]:
    """Hold the data directory's lock and pid file for the life of the agent."""
    return daemon.exclusive(layout.lock_file, layout.pid_file, "satellite")


class Satellite:
    def __init__(
        self,
        name: str,
        layout: SatelliteLayout,
        source: DesiredStateSource,
        sink: StatusSink,
        resolver: EngineResolver | None = None,
        ports: PortAllocator | None = None,
        kafka: KafkaFactory | None = None,
        zone: str = "zone-a",
        host: str = "127.0.0.1",
        max_brokers: int = 12,
        announce: Callable[[SatelliteInfo], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self.zone = zone
        self.host = host
        self.max_brokers = max_brokers
        self._announce = announce
        self._announced_at = 0.0
        self.layout = layout
        self.source = source
        self.sink = sink
        self.resolver = resolver or EngineResolver()
        self.ports = ports or PortAllocator(host)
        self.kafka: KafkaFactory = kafka or functools.partial(LocalKafkaCluster, resolver=self.resolver)
        self.workers: dict[str, ClusterWorker] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wakeups: dict[str, asyncio.Event] = {}
        self._source_errors: dict[str, str] = {}

    # ---- dispatch ------------------------------------------------------------------

    def _worker(self, cluster_id: str) -> ClusterWorker:
        if cluster_id not in self.workers:
            layout = self.layout.cluster(cluster_id)
            self.workers[cluster_id] = ClusterWorker(
                cluster_id, layout, self.name, self.kafka(layout), self.ports)
        return self.workers[cluster_id]

    def _on_disk(self) -> set[str]:
        if not self.layout.clusters_dir.exists():
            return set()
        return {p.name for p in self.layout.clusters_dir.iterdir() if p.is_dir()}

    async def run_cycle(self) -> str:
        """Read the desired state, hand each cluster to its worker, say what changed."""
        snap = await self.source.snapshot()
        said: list[str] = []
        for cluster_id, psc in snap.specs.items():
            worker = self._worker(cluster_id)
            if worker.remove_requested:
                continue  # a cluster being deleted finishes deleting before it is re-created
            change = worker.offer(psc)
            if change:
                said.append(change)
                self._wake(cluster_id)
        if snap.complete:
            for cluster_id in (set(self.workers) | self._on_disk()) - set(snap.specs) - set(snap.errors):
                worker = self._worker(cluster_id)
                if not worker.remove_requested:
                    worker.remove_requested = True
                    said.append(f"removing {cluster_id}")
                    self._wake(cluster_id)
        for cluster_id, err in snap.errors.items():
            if self._source_errors.get(cluster_id) != err:
                said.append(f"ignoring unreadable desired state: {err}")
        self._source_errors = dict(snap.errors)
        self._ensure_tasks()
        self._heartbeat()
        if self._announce is not None and time.monotonic() - self._announced_at >= ANNOUNCE_INTERVAL_S:
            self._announced_at = time.monotonic()
            await self._announce(self.info())
        return "; ".join(said)

    def info(self) -> SatelliteInfo:
        brokers = sum(len([n for n in w.spec.broker_ids if w.spec.node_satellite(n) in (None, self.name)])
                      for w in self.workers.values() if w.spec is not None and not w.remove_requested)
        return SatelliteInfo(
            name=self.name, zone=self.zone, host=self.host, max_brokers=self.max_brokers,
            memory_mb=int(psutil.virtual_memory().total // 2**20),
            clusters=sorted(self.workers), brokers=brokers, updated_at=time.time())

    def _wake(self, cluster_id: str) -> None:
        if cluster_id in self._wakeups:
            self._wakeups[cluster_id].set()

    def _ensure_tasks(self) -> None:
        for cluster_id, worker in list(self.workers.items()):
            task = self._tasks.get(cluster_id)
            if task is not None and task.done():
                del self._tasks[cluster_id]
                if worker.deleted:
                    del self.workers[cluster_id]
                    continue
                task = None
            if task is None and (worker.spec is not None or worker.remove_requested):
                self._wakeups[cluster_id] = asyncio.Event()
                self._tasks[cluster_id] = asyncio.create_task(
                    self._work(worker), name=f"cluster-{cluster_id}")

    async def _work(self, worker: ClusterWorker) -> None:
        last = ""
        wakeup = self._wakeups[worker.cluster_id]
        while True:
            try:
                sentence = await worker.run_cycle()
            except Exception as exc:
                log.exception("cluster %s: reconcile step failed", worker.cluster_id)
                sentence = f"cluster {worker.cluster_id}: reconcile step failed: {exc}"
            if sentence != last:
                log.info("%s", sentence)
                last = sentence
            if worker.deleted:
                await self.sink.forget(worker.cluster_id)
                return
            status = worker.status()
            await self.sink.publish(status)
            interval = (STEADY_INTERVAL_S if status.status == ClusterState.HEALTHY
                        else CONVERGING_INTERVAL_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), interval)
            wakeup.clear()

    def _heartbeat(self) -> None:
        write_json(self.layout.heartbeat_file, {
            "name": self.name,
            "pid": os.getpid(),
            "updated_at": time.time(),
            "clusters": sorted(self.workers),
            "source_errors": self._source_errors,
        })

    # ---- life cycle ----------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Reconcile until ``stop`` is set, then stop every cluster this satellite runs."""
        log.info("satellite %s starting with data dir %s", self.name, self.layout.root)
        for cluster_id in sorted(self._on_disk()):
            self._worker(cluster_id)
        while not stop.is_set():
            try:
                sentence = await self.run_cycle()
                if sentence:
                    log.info("satellite %s: %s", self.name, sentence)
            except Exception:
                log.exception("satellite %s: dispatch cycle failed", self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), DISPATCH_INTERVAL_S)
        await self.shutdown()

    async def shutdown(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()
        # the system cluster carries the control channel: it goes last, so that the other
        # clusters' final statuses still reach the mothership
        deadline = time.monotonic() + STOP_BUDGET_S
        waves = [[w for cid, w in self.workers.items() if cid != SYSTEM_CLUSTER_ID],
                 [w for cid, w in self.workers.items() if cid == SYSTEM_CLUSTER_ID]]
        for wave, reserve in zip(waves, (SYSTEM_SHUTDOWN_GRACE_S, 0.0), strict=True):
            grace = max(0.0, deadline - reserve - time.monotonic())
            await asyncio.gather(*(w.stop_all(grace) for w in wave))
            for worker in wave:
                if worker.spec is not None and worker.record is not None:
                    await self.sink.publish(worker.status())
        log.info("satellite %s stopped every process it ran", self.name)


def satellite_pid(layout: SatelliteLayout) -> int | None:
    """The pid of the live satellite that holds ``layout``'s lock, if there is one."""
    return daemon.holder_pid(layout.lock_file, layout.pid_file)
