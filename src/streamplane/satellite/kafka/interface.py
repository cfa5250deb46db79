"""What a cluster worker needs from Kafka, as Protocols, so a fake can stand in for it.

``KafkaCluster`` is the Kafka of one physical cluster on this host: it resolves the
distribution, makes one ``KafkaNode`` per node id and the ``KafkaProbe`` that reads the
running cluster, and runs the cluster-wide tools. ``local.LocalKafkaCluster`` runs real
Kafka processes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from streamplane.engine import KafkaDistribution
from streamplane.models.psc import PhysicalClusterSpec
from streamplane.models.status import NodeState
from streamplane.proc.process import ProcessHandle
from streamplane.satellite.kafka.config import NodePlan
from streamplane.satellite.kafka.probe import HealthReport
from streamplane.satellite.layout import ClusterLayout


class KafkaNode(Protocol):
    """One Kafka process (broker, controller, or both), supervised: it renders its config,
    formats its storage, starts, is adopted after a satellite restart, is restarted with
    backoff when it dies, and stops."""

    @property
    def node_id(self) -> int: ...

    @property
    def handle(self) -> ProcessHandle | None:
        """The live process, recorded in the cluster's state so a new satellite finds it."""

    @property
    def restarts(self) -> int: ...

    @property
    def last_exit_code(self) -> int | None: ...

    def adopt(self) -> bool:
        """Find this node's process if it still runs (by config path and start time)."""

    def alive(self) -> bool: ...

    def observe(self, now: float) -> str | None:
        """A sentence if the process died since the last look; it is then due after a backoff."""

    def due(self, now: float) -> bool:
        """Whether the node should be started now (not running, not stopping, backoff over)."""

    def configure(self, psc: PhysicalClusterSpec, plan: NodePlan,
                  voters: dict[int, tuple[str, int]]) -> str:
        """Write the node's config; returns a digest of what a process started now would run."""

    async def format(self, kafka_cluster_id: str, dist: KafkaDistribution) -> str | None:
        """Format the node's storage (a no-op when formatted); an error sentence, or None."""

    def start(self, psc: PhysicalClusterSpec, plan: NodePlan, dist: KafkaDistribution) -> None: ...

    async def stop(self, grace: float) -> None:
        """SIGTERM, then SIGKILL after ``grace``; the node is not started again until resumed."""

    def resume(self) -> None:
        """Let a stopped node be started again at once."""

    def bind_failed(self) -> bool:
        """Whether the last start failed because a port was taken."""

    def state(self, registered: bool, plan: NodePlan) -> NodeState: ...


class KafkaProbe(Protocol):
    """Admin-protocol access to one running cluster as its super-user."""

    async def check(self, metrics: list[tuple[str, int]]) -> HealthReport:
        """The cluster's health; the quorum leader from the raft metrics at ``metrics``."""

    async def replicas_on(self, broker_ids: set[int]) -> dict[int, int]:
        """How many partition replicas each of ``broker_ids`` still holds."""

    def renew(self) -> None:
        """Start over with a new client (after brokers went away)."""

    async def ensure_super_user(self, name: str, password: str, external_bootstrap: str) -> None:
        """Create the SCRAM super-user and check it can log in on the client listener."""

    async def verify_login(self, name: str, password: str, external_bootstrap: str) -> None:
        """Raise unless the SCRAM user can log in on the client listener (another satellite
        creates it)."""


class KafkaCluster(Protocol):
    """The Kafka of one physical cluster on this host."""

    async def distribution(self, version: str) -> KafkaDistribution:
        """The installed Kafka ``version``; raises EngineError or ValueError."""

    def node(self, node_id: int, handle: ProcessHandle | None = None) -> KafkaNode:
        """A new node; ``handle`` is the process a previous satellite recorded for it."""

    def probe(self, internal_bootstrap: str, user: str, password: str,
              ca_file: str | None = None) -> KafkaProbe:
        """``ca_file``: the cluster CA, when its internal listeners use TLS."""

    async def unregister(
        self, psc: PhysicalClusterSpec, bootstrap: str, broker_ids: list[int],
        dist: KafkaDistribution,
    ) -> tuple[list[int], list[str]]:
        """Unregister removed brokers from the KRaft metadata: the ids done, and a sentence
        for each that failed (to be retried)."""


#: how a satellite makes the ``KafkaCluster`` of each cluster directory
KafkaFactory = Callable[[ClusterLayout], KafkaCluster]
