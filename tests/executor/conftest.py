"""A satellite running a 4-broker cluster for the executor tests, and ways to look at it
that do not go through the executor's own code."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from confluent_kafka import Producer, TopicCollection
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType
from kafka import KafkaAdminClient

from streamplane.cli.local import LocalDeployment
from streamplane.kafka.settings import ClientSettings
from streamplane.loops.balancer.plan import PartitionMove, Plan
from streamplane.loops.balancer.reassign import ReassignmentAdmin
from streamplane.models.psc import PhysicalClusterSpec
from streamplane.testing import satellite_cluster, scram_client_config, wait_for
from streamplane.versions import DEFAULT_KAFKA_VERSION

T = TypeVar("T")
HEALTHY_TIMEOUT_S = 240.0
CLIENT_LOG = logging.getLogger("streamplane.rdkafka.tests")
THROTTLE_KEYS = ("leader.replication.throttled.rate", "follower.replication.throttled.rate",
                 "leader.replication.throttled.replicas", "follower.replication.throttled.replicas")
#: DescribeConfigs sources: set on the topic / on the broker itself
_DYNAMIC_SOURCES = (1, 2)
Assignment = dict[int, tuple[int, ...]]
FILLER = b"-1"


@dataclass
class FourBrokers:
    local: LocalDeployment
    psc: PhysicalClusterSpec
    bootstrap: str
    _admin: Any = None

    @property
    def user(self) -> str:
        return self.psc.super_user.name

    @property
    def password(self) -> str:
        return self.psc.super_user.password.get_secret_value()

    def settings(self) -> ClientSettings:
        return ClientSettings(self.bootstrap, self.user, self.password)

    def executor_admin(self) -> ReassignmentAdmin:
        return ReassignmentAdmin(self.settings())

    def client_config(self) -> dict[str, Any]:
        return {**scram_client_config(self.bootstrap, self.user, self.password), "logger": CLIENT_LOG}

    def admin(self) -> Any:
        """One confluent-kafka admin client for the tests (futures die with their client)."""
        if self._admin is None:
            self._admin = AdminClient(self.client_config())
        return self._admin

    def kafka_python(self) -> Any:
        return KafkaAdminClient(
            bootstrap_servers=self.bootstrap.split(","), security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=self.user,
            sasl_plain_password=self.password, request_timeout_ms=10000)

    # ---- building test data --------------------------------------------------------

    def create_topic(self, assignment: list[list[int]], prefix: str = "ex") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        new = NewTopic(name, len(assignment), replica_assignment=assignment,
                       config={"min.insync.replicas": "2"})
        self.admin().create_topics([new])[name].result(30)
        wait_for(lambda: len(self.describe(name)) == len(assignment), 30, f"topic {name} in metadata")
        return name

    def fill(self, topic: str, partitions: int, mib_each: float) -> int:
        """Write about ``mib_each`` MiB to every partition, so moves have data to copy.

        Each value reads as the number -1, so ``consume_sequences`` can tell filler from the
        sequence numbers of a ``SequenceProducer``. Returns how many values it wrote."""
        value = b" " * 9_998 + FILLER
        producer = Producer({**self.client_config(), "linger.ms": 20, "acks": "all",
                             "compression.type": "none"})
        per_partition = int(mib_each * 1024 * 1024 / len(value))
        for i in range(per_partition):
            for p in range(partitions):
                producer.produce(topic, value=value, partition=p)
            if i % 50 == 0:
                producer.poll(0)
        assert producer.flush(60) == 0
        return per_partition * partitions

    # ---- looking at the cluster ----------------------------------------------------

    def describe(self, topic: str) -> dict[int, tuple[tuple[int, ...], int | None]]:
        """partition -> (replicas, leader), from a broker's metadata."""
        desc = self.admin().describe_topics(TopicCollection([topic]))[topic].result(15)
        return {p.id: (tuple(n.id for n in p.replicas), p.leader.id if p.leader else None)
                for p in desc.partitions}

    def wait_assignment(self, topic: str, expected: Assignment, timeout: float = 60) -> None:
        """Until every partition has ``expected`` replicas in that order, replicas[0] leading."""
        def matches() -> bool:
            now = self.describe(topic)
            return all(now.get(p) == (r, r[0]) for p, r in expected.items())

        wait_for(matches, timeout, f"{topic} to be on {expected} with preferred leaders "
                 f"(now {self.describe(topic)})")

    def ongoing(self) -> dict[Any, Any]:
        client = self.kafka_python()
        try:
            return dict(client.list_partition_reassignments())
        finally:
            client.close()

    def throttle_configs(self, topics: list[str]) -> dict[str, dict[str, str]]:
        """Every throttle config set on any broker or on ``topics``; empty when clean."""
        admin = self.admin()
        found: dict[str, dict[str, str]] = {}
        resources = [ConfigResource(ResourceType.BROKER, str(b.id)) for b in self.psc.brokers]
        resources += [ConfigResource(ResourceType.TOPIC, t) for t in topics]
        for resource in resources:  # librdkafka: one broker resource per request
            for res, future in admin.describe_configs([resource]).items():
                entries = future.result(15)
                hits = {k: e.value for k, e in entries.items()
                        if k in THROTTLE_KEYS and int(getattr(e.source, "value", e.source)) in _DYNAMIC_SOURCES}
                if hits:
                    found[f"{res.restype.name.lower()} {res.name}"] = hits
        return found

    def wait_clean(self, topics: list[str], timeout: float = 30) -> None:
        """Until no reassignment is in progress and no throttle config is left."""
        wait_for(lambda: not self.ongoing() and not self.throttle_configs(topics), timeout,
                 "no reassignment in progress and no throttle left "
                 f"(ongoing {self.ongoing()}, throttles {self.throttle_configs(topics)})")


def four_broker_spec() -> PhysicalClusterSpec:
    return PhysicalClusterSpec.model_validate({
        "id": "executor-four",
        "kafka_version": DEFAULT_KAFKA_VERSION,
        "controllers": {"mode": "combined", "count": 3},
        "brokers": [{"id": b, "zone": f"zone-{z}"} for b, z in ((1, "a"), (2, "b"), (3, "c"), (4, "a"))],
        "broker_configs": {"default.replication.factor": "3", "min.insync.replicas": "2",
                           "group.initial.rebalance.delay.ms": "0"},
        "jvm": {"heap_mb": 256},
        "super_user": {"password": secrets.token_urlsafe(18)},
    })


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FourBrokers]:
    """A satellite daemon running four brokers (three of them also KRaft controllers)."""
    psc = four_broker_spec()
    with satellite_cluster(tmp_path_factory.mktemp("sat-executor"), psc, HEALTHY_TIMEOUT_S) as (local, status):
        yield FourBrokers(local, psc, status.bootstrap or "")


# ---- plans and polling -------------------------------------------------------------


def plan_for(moves: dict[str, tuple[Assignment, Assignment]]) -> Plan:
    """A plan moving each topic's partitions from the first assignment to the second."""
    return Plan(cluster_id="executor-four", moves=tuple(
        PartitionMove(topic=t, partition=p, old_replicas=old[p], replicas=new[p], reason="test")
        for t, (old, new) in moves.items() for p in sorted(new) if old[p] != new[p]
    ))


def as_assignment(rows: list[list[int]]) -> Assignment:
    return {p: tuple(r) for p, r in enumerate(rows)}


async def until(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.2) -> T:
    """``wait_for`` for coroutines: poll ``check`` without blocking the event loop."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        await asyncio.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


async def holds(check: Callable[[], bool], seconds: float, what: str, interval: float = 0.2) -> None:
    """Assert ``check`` stays true for ``seconds`` (polled)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert check(), f"{what} stopped being true"
        await asyncio.sleep(interval)


def state_file(tmp_path: Path) -> Path:
    return tmp_path / "execution.json"
