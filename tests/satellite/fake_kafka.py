"""A fake of the Kafka a ``ClusterWorker`` drives (``satellite.kafka.interface``): nodes are
entries in a ``FakeHost``, which records what ran, so ``run_cycle`` is tested without Kafka.

The host outlives the worker, as real processes outlive a satellite: a new worker over the
same host and data directory must adopt the nodes still running.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from streamplane.engine import EngineError
from streamplane.models.psc import PhysicalClusterSpec
from streamplane.models.status import NodeState
from streamplane.proc.process import ProcessHandle
from streamplane.proc.supervisor import Supervisor
from streamplane.satellite.kafka.config import NodePlan
from streamplane.satellite.kafka.node import NODE_BACKOFF, Supervised
from streamplane.satellite.kafka.probe import HealthReport


@dataclass
class Clock:
    now: float = 1_000_000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


@dataclass
class FakeProcess:
    node_id: int
    handle: ProcessHandle
    is_broker: bool
    is_controller: bool


@dataclass
class FakeHost:
    """What runs on the host, and a log of everything done to it."""

    clock: Clock
    processes: dict[int, FakeProcess] = field(default_factory=dict)  # by pid
    exit_codes: dict[int, int] = field(default_factory=dict)  # pid -> code of the dead
    formats: list[int] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    stops: list[int] = field(default_factory=list)
    unregistered: list[int] = field(default_factory=list)
    super_users: list[str] = field(default_factory=list)
    replicas: dict[int, int] = field(default_factory=dict)  # broker id -> replicas it holds
    voters: dict[int, dict[int, tuple[str, int]]] = field(default_factory=dict)  # as configured
    missing_version: str | None = None
    _next_pid: int = 4000

    def spawn(self, node_id: int, plan: NodePlan) -> ProcessHandle:
        self._next_pid += 1
        handle = ProcessHandle(self._next_pid, self.clock.now)
        self.processes[handle.pid] = FakeProcess(node_id, handle, plan.is_broker, plan.is_controller)
        self.starts.append(node_id)
        return handle

    def alive(self, handle: ProcessHandle) -> bool:
        proc = self.processes.get(handle.pid)
        return proc is not None and proc.handle.create_time == handle.create_time

    def kill(self, node_id: int, code: int) -> int:
        """The node's process exits on its own, as a crashed broker does."""
        pid = self.pid_of(node_id)
        del self.processes[pid]
        self.exit_codes[pid] = code
        return pid

    def pid_of(self, node_id: int) -> int:
        return next(pid for pid, p in self.processes.items() if p.node_id == node_id)

    def running(self) -> list[int]:
        return sorted(p.node_id for p in self.processes.values())


@dataclass
class FakeNode(Supervised):
    node_id: int
    host: FakeHost
    handle: ProcessHandle | None = None
    supervisor: Supervisor = field(default_factory=lambda: Supervisor(NODE_BACKOFF))

    def adopt(self) -> bool:
        if self.handle is not None and self.host.alive(self.handle):
            return True
        self.handle = None
        return False

    def alive(self) -> bool:
        return self.handle is not None and self.host.alive(self.handle)

    def observe(self, now: float) -> str | None:
        if self.handle is None or self.host.alive(self.handle):
            if self.handle is not None:
                self.supervisor.running(now)
            return None
        pid = self.handle.pid
        code = self.host.exit_codes.get(pid)
        self.handle = None
        waited = self.supervisor.exited(now, code)
        return f"node {self.node_id} (pid {pid}) died (exit code {code}); restarting in {waited:.0f}s"

    def due(self, now: float) -> bool:
        return self.handle is None and self.supervisor.due(now)

    def configure(self, psc: PhysicalClusterSpec, plan: NodePlan,
                  voters: dict[int, tuple[str, int]]) -> str:
        self.host.voters[self.node_id] = dict(voters)
        text = repr((plan, sorted(voters.items()), sorted(psc.broker_configs.items()), psc.jvm))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    async def format(self, kafka_cluster_id: str, dist: Any) -> str | None:
        self.host.formats.append(self.node_id)
        return None

    def start(self, psc: PhysicalClusterSpec, plan: NodePlan, dist: Any) -> None:
        self.handle = self.host.spawn(self.node_id, plan)
        self.supervisor.started(self.host.clock.now)

    async def stop(self, grace: float) -> None:
        self.supervisor.stopping = True
        if self.handle is not None and self.host.alive(self.handle):
            del self.host.processes[self.handle.pid]
            self.host.stops.append(self.node_id)
            self.supervisor.last_exit_code = 0
        self.handle = None

    def resume(self) -> None:
        self.supervisor.resume()

    def bind_failed(self) -> bool:
        return False

    def state(self, registered: bool, plan: NodePlan) -> NodeState:
        if self.supervisor.stopping:
            return NodeState.STOPPING if self.handle else NodeState.STOPPED
        if self.handle is None:
            return NodeState.RESTARTING if self.restarts else NodeState.STOPPED
        return NodeState.STARTING if plan.is_broker and not registered else NodeState.RUNNING


class FakeProbe:
    """Reads the fake host as the admin protocol would read the cluster."""

    def __init__(self, host: FakeHost) -> None:
        self.host = host

    async def check(self, metrics: list[tuple[str, int]]) -> HealthReport:
        procs = self.host.processes.values()
        controllers = sorted(p.node_id for p in procs if p.is_controller)
        leader = controllers[0] if len(controllers) * 2 > len(metrics) else None
        return HealthReport(registered_brokers={p.node_id for p in procs if p.is_broker},
                            quorum_leader=leader, under_replicated=0, offline=0)

    async def replicas_on(self, broker_ids: set[int]) -> dict[int, int]:
        return {b: self.host.replicas.get(b, 0) for b in broker_ids}

    def renew(self) -> None:
        pass

    async def ensure_super_user(self, name: str, password: str, external_bootstrap: str) -> None:
        self.host.super_users.append(name)

    async def verify_login(self, name: str, password: str, external_bootstrap: str) -> None:
        if name not in self.host.super_users:
            raise RuntimeError(f"SASL authentication failed for {name}")


@dataclass
class FakeKafka:
    host: FakeHost

    async def distribution(self, version: str) -> Any:
        if version == self.host.missing_version:
            raise EngineError(f"Kafka {version} is not installed")
        return object()

    def node(self, node_id: int, handle: ProcessHandle | None = None) -> FakeNode:
        return FakeNode(node_id, self.host, handle)

    def probe(self, internal_bootstrap: str, user: str, password: str,
              ca_file: str | None = None) -> FakeProbe:
        return FakeProbe(self.host)

    async def unregister(self, psc: PhysicalClusterSpec, bootstrap: str, broker_ids: list[int],
                         dist: Any) -> tuple[list[int], list[str]]:
        self.host.unregistered += broker_ids
        return list(broker_ids), []
