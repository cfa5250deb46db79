"""Reconciling one physical cluster: the satellite's per-cluster ``run_cycle``.

Each cycle reads the spec and the processes, decides the single most useful thing to do,
does it, and returns one sentence saying what happened. Everything it needs to survive
its own death (ports, formatting, pids, which config each process runs) is in
``cluster.json`` in the cluster's directory.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

from streamplane.engine import EngineError, KafkaDistribution
from streamplane.files import read_json, write_json, write_private
from streamplane.models.psc import PhysicalClusterSpec, new_kafka_cluster_id
from streamplane.models.status import ClusterState, ClusterStatus, NodeStatus
from streamplane.proc.process import ProcessHandle
from streamplane.satellite.kafka.config import NodePlan, NodePorts, digest
from streamplane.satellite.kafka.interface import KafkaCluster, KafkaNode, KafkaProbe
from streamplane.satellite.kafka.probe import HealthReport
from streamplane.satellite.layout import ClusterLayout
from streamplane.satellite.ports import PortAllocator

log = logging.getLogger(__name__)

STOP_GRACE_S = 60.0  # controlled shutdown moves leadership away first; give it time
#: how long stopping a whole cluster may take when the satellite stops: brokers get half,
#: controllers the rest; a user's `streamplane down` waits for this, so it stays short
SHUTDOWN_GRACE_S = 20.0
DELETE_GRACE_S = 15.0  # the data is about to be deleted, so a slow shutdown buys nothing
#: once most controllers of a cluster being stopped have exited, the nodes left cannot get
#: their controlled shutdown approved (Kafka would wait minutes for it): this long, then killed
QUORUM_LOST_GRACE_S = 10.0
#: how long after a failed unregistration of a removed broker it is tried again
UNREGISTER_RETRY_S = 30.0


@dataclass
class NodeRecord:
    ports: NodePorts
    formatted: bool = False
    running_digest: str | None = None  # digest of the config the live process started with
    process: ProcessHandle | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ports": self.ports.to_json(),
            "formatted": self.formatted,
            "running_digest": self.running_digest,
            "process": self.process.to_json() if self.process else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NodeRecord:
        proc = data.get("process")
        return cls(
            ports=NodePorts(**data["ports"]),
            formatted=bool(data.get("formatted")),
            running_digest=data.get("running_digest"),
            process=ProcessHandle.from_json(proc) if proc else None,
        )


@dataclass
class ClusterRecord:
    kafka_cluster_id: str
    nodes: dict[int, NodeRecord] = field(default_factory=dict)
    super_user_digest: str | None = None
    healthy_once: bool = False
    observed_generation: int | None = None
    #: the last spec this satellite accepted (wire form, so it holds the live password)
    applied_spec: dict[str, Any] | None = None
    #: brokers removed from the PSC, still to be unregistered from KRaft (by the
    #: coordinating satellite, once Kafka no longer counts them alive)
    unregister_pending: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "kafka_cluster_id": self.kafka_cluster_id,
            "nodes": {str(k): v.to_json() for k, v in self.nodes.items()},
            "super_user_digest": self.super_user_digest,
            "healthy_once": self.healthy_once,
            "observed_generation": self.observed_generation,
            "applied_spec": self.applied_spec,
            "unregister_pending": self.unregister_pending,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClusterRecord:
        return cls(
            kafka_cluster_id=data["kafka_cluster_id"],
            nodes={int(k): NodeRecord.from_json(v) for k, v in data.get("nodes", {}).items()},
            super_user_digest=data.get("super_user_digest"),
            healthy_once=bool(data.get("healthy_once")),
            observed_generation=data.get("observed_generation"),
            applied_spec=data.get("applied_spec"),
            unregister_pending=[int(n) for n in data.get("unregister_pending", [])],
        )

    def used_ports(self) -> set[int]:
        ports: set[int] = set()
        for rec in self.nodes.values():
            ports |= {p for p in rec.ports.to_json().values() if p}
        return ports


class ClusterWorker:
    """Keeps one physical cluster converged to its PSC on this satellite, talking to Kafka
    only through ``kafka`` (the real processes, or a fake in unit tests)."""

    def __init__(
        self,
        cluster_id: str,
        layout: ClusterLayout,
        satellite: str,
        kafka: KafkaCluster,
        ports: PortAllocator,
    ) -> None:
        self.cluster_id = cluster_id
        self.layout = layout
        self.satellite = satellite
        self.kafka = kafka
        self.ports = ports
        self.spec: PhysicalClusterSpec | None = None
        self.remove_requested = False
        self.refused: str | None = None
        self.record: ClusterRecord | None = self._load()
        if self.record is not None and self.record.applied_spec is not None:
            self.spec = PhysicalClusterSpec.model_validate(self.record.applied_spec)
        #: the Kafka node of each node id
        self.runners: dict[int, KafkaNode] = {}
        self._probe: KafkaProbe | None = None
        self._probe_key: tuple[str, str, str | None] | None = None
        self._report = HealthReport()
        self._last_error: str | None = None
        self._deleted = False
        self._stopped = False
        #: removed nodes this satellite stopped itself (unregistered without waiting for
        #: Kafka to notice)
        self._stopped_here: set[int] = set()
        #: a failed unregistration (one JVM each) is retried no sooner than this
        self._unregister_retry_at = 0.0
        if self.record is not None:
            self.ports.reserve(self.record.used_ports())
            for node_id, node in self.record.nodes.items():
                runner = self.runners[node_id] = self.kafka.node(node_id, node.process)
                if runner.adopt():
                    log.info("cluster %s: adopted node %s (pid %s)", cluster_id, node_id,
                             runner.handle.pid if runner.handle else "?")

    # ---- persistence ---------------------------------------------------------------

    def _load(self) -> ClusterRecord | None:
        if not self.layout.state_file.exists():
            return None
        return ClusterRecord.from_json(read_json(self.layout.state_file))

    def _save(self) -> None:
        assert self.record is not None
        for node_id, runner in self.runners.items():
            if node_id in self.record.nodes:
                self.record.nodes[node_id].process = runner.handle
        write_json(self.layout.state_file, self.record.to_json())

    def _runner(self, node_id: int) -> KafkaNode:
        if node_id not in self.runners:
            self.runners[node_id] = self.kafka.node(node_id)
        return self.runners[node_id]

    @property
    def deleted(self) -> bool:
        return self._deleted

    def offer(self, psc: PhysicalClusterSpec) -> str | None:
        """Accept a new desired spec, or say why it cannot be applied to this cluster."""
        if self.spec == psc:
            return None
        reason = self._refusal(psc)
        if reason:
            if reason != self.refused:
                self.refused = reason
                return f"refused {psc.id} generation {psc.generation}: {reason}"
            return None
        self.refused = None
        was = self.spec
        self.spec = psc
        if self.record is not None:
            self.record.applied_spec = psc.to_wire()
            if was is not None and self.coordinates(psc):
                removed = set(was.broker_ids) - set(psc.broker_ids)
                self.record.unregister_pending = sorted(set(self.record.unregister_pending) | removed)
            self._save()
        return f"{'updated' if was else 'accepted'} {psc.id} generation {psc.generation}"

    def _refusal(self, psc: PhysicalClusterSpec) -> str | None:
        rec = self.record
        if rec is None or self.spec is None:
            return None
        if psc.kafka_cluster_id and psc.kafka_cluster_id != rec.kafka_cluster_id:
            return (f"kafka_cluster_id cannot change from {rec.kafka_cluster_id} "
                    f"to {psc.kafka_cluster_id} on an existing cluster")
        if psc.super_user != self.spec.super_user:
            return "the super-user of a running cluster cannot change (rotation is not supported yet)"
        if psc.tls != self.spec.tls:
            return ("TLS between the hosts of a running cluster cannot be turned on, off or "
                    "to another CA yet")
        if psc.controller_ids() != self.spec.controller_ids():
            return (f"the controller quorum cannot change from nodes {self.spec.controller_ids()} to "
                    f"{psc.controller_ids()}; keep the controllers' brokers when scaling")
        return None

    def coordinates(self, psc: PhysicalClusterSpec) -> bool:
        """Whether this satellite does the cluster's cluster-wide work (the PSC's own
        satellite does; a PSC naming none runs entirely here)."""
        return psc.satellite in (None, self.satellite)

    def _runs(self, psc: PhysicalClusterSpec, node_id: int) -> bool:
        return psc.node_satellite(node_id) in (None, self.satellite)

    # ---- the cycle -----------------------------------------------------------------

    async def run_cycle(self) -> str:
        if self.remove_requested:
            return await self._remove()
        psc = self.spec
        if psc is None:
            return f"cluster {self.cluster_id}: no spec yet"
        try:
            dist = await self.kafka.distribution(psc.kafka_version)
        except (EngineError, ValueError) as exc:
            self._last_error = str(exc)
            return f"cluster {self.cluster_id} cannot start: {exc}"
        if self.record is None:
            self.record = ClusterRecord(psc.kafka_cluster_id or new_kafka_cluster_id(),
                                        applied_spec=psc.to_wire())
        plans = self._plan(psc)
        self._save()
        sentences: list[str] = []
        sentences += await self._drop_removed_nodes(plans)
        sentences += await self._unregister_removed(psc, plans, dist)
        voters = self._voters(psc, plans)
        if isinstance(voters, str):
            return f"cluster {self.cluster_id}: {voters}"
        digests = self._write_configs(psc, plans, voters)
        formatted = await self._format(plans, dist)
        if formatted:
            sentences.append(formatted)
        now = time.time()
        for node_id in plans:
            died = self._runner(node_id).observe(now)
            if died:
                sentences.append(died)
                moved = self._move_ports_if_taken(psc, node_id)
                if moved:
                    sentences.append(moved)
                    return f"cluster {self.cluster_id}: " + "; ".join(sentences)
        started = self._start_due(psc, plans, dist, digests, now)
        if started:
            sentences.append(f"started node(s) {', '.join(map(str, started))}")
        self._save()
        self._report = await self._check(psc, plans)
        sentences += await self._after_health(psc, plans, digests)
        self._save()
        if not sentences:
            sentences.append(self._steady_sentence(psc, plans))
        return f"cluster {self.cluster_id}: " + "; ".join(sentences)

    def _plan(self, psc: PhysicalClusterSpec) -> dict[int, NodePlan]:
        assert self.record is not None
        controllers = set(psc.controller_ids())
        brokers = {b.id: b for b in psc.brokers}
        plans: dict[int, NodePlan] = {}
        for node_id in sorted(controllers | set(brokers)):
            if not self._runs(psc, node_id):
                continue
            b = brokers.get(node_id)
            roles = tuple(r for r, on in (("broker", b is not None),
                                          ("controller", node_id in controllers)) if on)
            rec = self.record.nodes.get(node_id)
            old = rec.ports if rec else None

            def pick(wanted: int | None, previous: int | None, needed: bool) -> int | None:
                if not needed:
                    return None
                return wanted or previous or self.ports.allocate()

            ports = NodePorts(
                controller=pick(b.controller_port if b else None,
                                old.controller if old else None, "controller" in roles),
                internal=pick(b.internal_port if b else None,
                              old.internal if old else None, "broker" in roles),
                external=pick(b.port if b else None, old.external if old else None,
                              "broker" in roles),
                metrics=pick(b.metrics_port if b else None, old.metrics if old else None,
                             True) or 0,
            )
            if rec is None:
                self.record.nodes[node_id] = NodeRecord(ports=ports)
            else:
                rec.ports = ports
            plans[node_id] = NodePlan(node_id, roles, ports, b.zone if b else None,
                                      b.cell if b else None, psc.node_host(node_id))
        return plans

    async def _drop_removed_nodes(self, plans: dict[int, NodePlan]) -> list[str]:
        assert self.record is not None
        gone = [n for n in self.record.nodes if n not in plans]
        if not gone:
            return []
        # a broker's data is deleted with it: only a broker holding no replica may go
        if self._probe is None:
            return [f"not removing node(s) {gone} yet: the cluster has not been checked"]
        try:
            left = await self._probe.replicas_on(set(gone))
        except Exception as exc:  # retried next cycle
            return [f"not removing node(s) {gone} yet: cannot read partition placement ({exc})"]
        if any(left.values()):
            busy = ", ".join(f"{n} ({k} replicas)" for n, k in sorted(left.items()) if k)
            return [f"waiting for node(s) {busy} to be drained before removing them"]
        await asyncio.gather(*(self._runner(n).stop(STOP_GRACE_S) for n in gone))
        self._stopped_here.update(gone)  # stopped by this satellite: known gone at once
        for n in gone:
            shutil.rmtree(self.layout.node_dir(n), ignore_errors=True)
            del self.record.nodes[n]
            self.runners.pop(n, None)
        self._probe.renew()  # its client may have taken a removed broker for the controller
        return [f"removed node(s) {', '.join(map(str, gone))}"]

    async def _unregister_removed(self, psc: PhysicalClusterSpec, plans: dict[int, NodePlan],
                                  dist: KafkaDistribution) -> list[str]:
        """Unregister removed brokers from the KRaft metadata, so the cluster stops
        listing them as fenced members (Kafka's ``kafka-cluster unregister``). Only the
        coordinating satellite does it, and only for brokers Kafka no longer counts alive
        (a removed broker runs until its own satellite has seen it drained)."""
        assert self.record is not None
        pending = [n for n in self.record.unregister_pending if n not in plans and (
            n in self._stopped_here or n not in self._report.registered_brokers)]
        if not pending or time.monotonic() < self._unregister_retry_at:
            return []
        brokers = [p for p in plans.values() if p.is_broker and self._runner(p.node_id).alive()]
        if not brokers:
            return []
        bootstrap = ",".join(f"{p.host}:{p.ports.internal}" for p in brokers)
        done, said = await self.kafka.unregister(psc, bootstrap, pending, dist)
        self.record.unregister_pending = [n for n in self.record.unregister_pending if n not in done]
        if set(pending) - set(done):
            self._unregister_retry_at = time.monotonic() + UNREGISTER_RETRY_S
        if done:
            said.append(f"unregistered broker(s) {', '.join(map(str, done))}")
        return said

    def _move_ports_if_taken(self, psc: PhysicalClusterSpec, node_id: int) -> str | None:
        """A port chosen for a broker can be taken by someone else before the broker binds
        it; then the broker gets fresh client, internal and metrics ports (ports the PSC
        fixes are kept, and a controller port, which every voter knows, is only retried)."""
        assert self.record is not None
        if not self._runner(node_id).bind_failed():
            return None
        rec = self.record.nodes[node_id]
        fixed = next((b for b in psc.brokers if b.id == node_id), None)
        old = rec.ports
        rec.ports = NodePorts(
            controller=old.controller,
            internal=(fixed and fixed.internal_port) or (old.internal and self.ports.allocate()),
            external=(fixed and fixed.port) or (old.external and self.ports.allocate()),
            metrics=(fixed and fixed.metrics_port) or self.ports.allocate(),
        )
        self._save()
        return f"node {node_id} could not bind its ports; it gets new ones"

    def _voters(self, psc: PhysicalClusterSpec,
                plans: dict[int, NodePlan]) -> dict[int, tuple[str, int]] | str:
        """Every controller's address and port: this satellite's from its plans, the others'
        from the PSC (the mothership copies them there from their satellites' reports);
        a sentence saying what is missing while one is not known yet."""
        voters: dict[int, tuple[str, int]] = {}
        unknown = []
        for node_id in psc.controller_ids():
            plan = plans.get(node_id)
            broker = psc.broker(node_id)
            port = plan.ports.controller if plan else broker.controller_port if broker else None
            if port is None:
                unknown.append(node_id)
            else:
                voters[node_id] = (psc.node_host(node_id), port)
        if unknown:
            return (f"waiting for the controller port of node(s) {', '.join(map(str, unknown))} "
                    "from their satellites")
        return voters

    def _write_configs(self, psc: PhysicalClusterSpec, plans: dict[int, NodePlan],
                       voters: dict[int, tuple[str, int]]) -> dict[int, str]:
        return {node_id: self._runner(node_id).configure(psc, plan, voters)
                for node_id, plan in plans.items()}

    async def _format(self, plans: dict[int, NodePlan], dist: KafkaDistribution) -> str | None:
        assert self.record is not None
        todo = [n for n in plans if not self.record.nodes[n].formatted]
        if not todo:
            return None
        kafka_cluster_id = self.record.kafka_cluster_id
        results = await asyncio.gather(*(self._runner(n).format(kafka_cluster_id, dist) for n in todo))
        failed = [err for err in results if err]
        if failed:
            self._last_error = failed[0]
            return f"formatting failed: {failed[0]}"
        for n in todo:
            self.record.nodes[n].formatted = True
        return f"formatted storage of node(s) {', '.join(map(str, todo))}"

    def _start_due(
        self, psc: PhysicalClusterSpec, plans: dict[int, NodePlan], dist: KafkaDistribution,
        digests: dict[int, str], now: float,
    ) -> list[int]:
        assert self.record is not None
        started = []
        for node_id, plan in plans.items():
            runner = self._runner(node_id)
            rec = self.record.nodes[node_id]
            if not rec.formatted or not runner.due(now):
                continue
            runner.start(psc, plan, dist)
            rec.running_digest = digests[node_id]
            self._save()  # record the pid at once: a satellite killed now must find it
            started.append(node_id)
        return started

    async def _check(self, psc: PhysicalClusterSpec, plans: dict[int, NodePlan]) -> HealthReport:
        if not any(r.alive() for r in self.runners.values()):
            return HealthReport(error="no process is running")
        bootstrap = ",".join(f"{p.host}:{p.ports.internal}" for p in plans.values() if p.is_broker)
        if not bootstrap:  # only dedicated controllers here: ask the brokers elsewhere
            bootstrap = ",".join(f"{psc.node_host(b.id)}:{b.internal_port}" for b in psc.brokers
                                 if b.internal_port)
        ca_file = self._ca_file(psc)
        key = (bootstrap, psc.super_user.password.get_secret_value(), ca_file)
        if self._probe is None or self._probe_key != key:
            self._probe = self.kafka.probe(bootstrap, psc.super_user.name, key[1], ca_file)
            self._probe_key = key
        # the quorum leader as this satellite's controllers see it (its brokers, which follow
        # the quorum, when it runs no controller)
        metrics = ([(p.host, p.ports.metrics) for p in plans.values() if p.is_controller]
                   or [(p.host, p.ports.metrics) for p in plans.values()])
        return await self._probe.check(metrics)

    def _ca_file(self, psc: PhysicalClusterSpec) -> str | None:
        if psc.tls is None:
            return None
        path = self.layout.ca_file
        if not path.exists() or path.read_text() != psc.tls.ca_cert:
            write_private(path, psc.tls.ca_cert)
        return str(path)

    async def _after_health(
        self, psc: PhysicalClusterSpec, plans: dict[int, NodePlan], digests: dict[int, str]
    ) -> list[str]:
        sentences: list[str] = []
        broker_ids = {n for n, p in plans.items() if p.is_broker}
        running = all(self._runner(n).alive() for n in plans)
        registered = broker_ids <= self._report.registered_brokers
        su_digest = digest(psc.super_user.name + psc.super_user.password.get_secret_value()
                            + (self.record.kafka_cluster_id if self.record else ""))
        if running and registered and self.record and self.record.super_user_digest != su_digest:
            sentences.append(await self._ensure_super_user(psc, plans, su_digest))
        healthy = self._healthy(plans)
        if healthy and self.record:
            self.record.healthy_once = True
            self._last_error = None
            stale = [n for n in sorted(plans) if self.record.nodes[n].running_digest != digests[n]]
            if stale:
                sentences.append(await self._restart_for_config(stale[0]))
            else:
                if self.record.observed_generation != psc.generation:
                    sentences.append(f"converged to generation {psc.generation}")
                self.record.observed_generation = psc.generation
        return sentences

    async def _ensure_super_user(
        self, psc: PhysicalClusterSpec, plans: dict[int, NodePlan], digest: str
    ) -> str:
        assert self._probe is not None and self.record is not None
        name, password = psc.super_user.name, psc.super_user.password.get_secret_value()
        external = ",".join(f"{p.host}:{p.ports.external}" for p in plans.values() if p.is_broker)
        if not self.coordinates(psc):
            # the coordinating satellite creates it; this one only checks that it works here
            if external:
                try:
                    await self._probe.verify_login(name, password, external)
                except Exception as exc:
                    return f"waiting for satellite {psc.satellite} to create the super-user ({exc})"
            self.record.super_user_digest = digest
            return f"super-user {name} logs in on this satellite's brokers"
        try:
            await self._probe.ensure_super_user(name, password, external)
        except Exception as exc:
            self._last_error = f"creating the SCRAM super-user failed: {exc}"
            return self._last_error
        self.record.super_user_digest = digest
        return f"created SCRAM-SHA-512 super-user {name}"

    async def _restart_for_config(self, node_id: int) -> str:
        runner = self._runner(node_id)
        await runner.stop(STOP_GRACE_S)
        runner.resume()
        return f"restarting node {node_id} to apply its new configuration"

    def _healthy(self, plans: dict[int, NodePlan]) -> bool:
        r = self._report
        brokers = {n for n, p in plans.items() if p.is_broker}
        return (
            r.error is None
            and all(self._runner(n).alive() for n in plans)
            and brokers <= r.registered_brokers
            and r.quorum_leader is not None
            and r.under_replicated == 0
            and r.offline == 0
            and self.record is not None
            and self.record.super_user_digest is not None
        )

    def _steady_sentence(self, psc: PhysicalClusterSpec, plans: dict[int, NodePlan]) -> str:
        r = self._report
        if self._healthy(plans):
            return f"healthy, {len(psc.brokers)} broker(s), quorum leader {r.quorum_leader}"
        why = r.error or (
            f"{len(r.registered_brokers)}/{len(psc.brokers)} brokers registered, "
            f"quorum leader {r.quorum_leader}, under-replicated {r.under_replicated}")
        return f"waiting: {why}"

    # ---- stopping and removal ------------------------------------------------------

    async def stop_all(self, grace: float = SHUTDOWN_GRACE_S) -> None:
        """Stop every process within ``grace`` seconds in all: brokers first, controllers
        last, so shutdown stays controlled. A node still running when its share of the time
        is up is killed; its data is safe (replicas, and the page cache outlives it)."""
        plans = self._plan(self.spec) if self.spec and self.record else {}
        controllers = {n for n, p in plans.items() if p.is_controller}
        brokers_only = [r for n, r in self.runners.items() if n not in controllers]
        rest = [r for n, r in self.runners.items() if n in controllers]
        deadline = time.monotonic() + grace
        await asyncio.gather(*(r.stop(grace / 2 if rest else grace) for r in brokers_only))
        await self._stop_voters(rest, max(0.0, deadline - time.monotonic()))
        self._stopped = True
        if self.record is not None:
            self._save()

    async def _stop_voters(self, runners: list[KafkaNode], grace: float) -> None:
        """Stop the controller nodes together. A node that is also a broker asks the quorum
        to approve its controlled shutdown; once fewer than a majority of the controllers
        are left, no one can approve it, so the nodes still running get
        ``QUORUM_LOST_GRACE_S`` more and are then killed, not left to wait out ``grace``."""
        majority = len(runners) // 2 + 1
        tasks = {asyncio.ensure_future(r.stop(grace)): r for r in runners}
        pending = set(tasks)
        while len(pending) >= majority:
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if pending:
            _, pending = await asyncio.wait(pending, timeout=min(grace, QUORUM_LOST_GRACE_S))
        if not pending:
            return
        left = [tasks[t] for t in pending]
        log.warning("cluster %s: node(s) %s still stopping with the controller quorum gone; killing them",
                    self.cluster_id, ", ".join(str(r.node_id) for r in left))
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.gather(*(r.stop(0.0) for r in left))

    async def _remove(self) -> str:
        await self.stop_all(DELETE_GRACE_S)
        shutil.rmtree(self.layout.root, ignore_errors=True)
        self._deleted = True
        return f"cluster {self.cluster_id}: stopped and deleted its data"

    # ---- status --------------------------------------------------------------------

    def status(self) -> ClusterStatus:
        psc = self.spec
        r = self._report
        plans = self._plan(psc) if psc and self.record else {}
        nodes: list[NodeStatus] = []
        for node_id, plan in plans.items():
            runner = self._runner(node_id)
            broker = next((b for b in psc.brokers if b.id == node_id), None) if psc else None
            nodes.append(NodeStatus(
                id=node_id, roles=list(plan.roles),
                state=runner.state(node_id in r.registered_brokers, plan),
                host=plan.host, satellite=self.satellite,
                port=plan.ports.external, internal_port=plan.ports.internal,
                controller_port=plan.ports.controller, metrics_port=plan.ports.metrics,
                pid=runner.handle.pid if runner.handle else None,
                zone=broker.zone if broker else None, cell=broker.cell if broker else None,
                restarts=runner.restarts, last_exit_code=runner.last_exit_code,
                registered=node_id in r.registered_brokers,
            ))
        healthy = bool(plans) and self._healthy(plans)
        if self._deleted:
            state = ClusterState.DELETED
        elif self.remove_requested:
            state = ClusterState.STOPPING
        elif self._stopped:
            state = ClusterState.STOPPED
        elif healthy:
            state = ClusterState.HEALTHY
        elif self.record and self.record.healthy_once:
            state = ClusterState.DEGRADED
        elif any(n.pid for n in nodes):
            state = ClusterState.STARTING
        elif self._last_error:
            state = ClusterState.FAILED
        else:
            state = ClusterState.PENDING
        brokers = [n for n in nodes if "broker" in n.roles]
        return ClusterStatus(
            id=self.cluster_id,
            satellite=self.satellite,
            status=state,
            generation=psc.generation if psc else 0,
            observed_generation=self.record.observed_generation if self.record else None,
            kafka_version=psc.kafka_version if psc else "",
            kafka_cluster_id=self.record.kafka_cluster_id if self.record else None,
            bootstrap=",".join(f"{n.host}:{n.port}" for n in brokers) or None,
            brokers=brokers,
            controllers=[n for n in nodes if "broker" not in n.roles],
            quorum_leader=r.quorum_leader,
            under_replicated_partitions=r.under_replicated,
            offline_partitions=r.offline,
            message=r.error or "",
            last_error=self.refused or self._last_error,
            updated_at=time.time(),
        )

