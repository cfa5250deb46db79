"""Health of a running cluster, read through Kafka's admin protocol and broker metrics."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TypeVar

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from streamplane.kafka.settings import ADMIN_TIMEOUT_S, sasl_config
from streamplane.metrics.scrape import scrape, value

T = TypeVar("T")


@dataclass
class HealthReport:
    registered_brokers: set[int] = field(default_factory=set)
    quorum_leader: int | None = None
    under_replicated: int | None = None
    offline: int | None = None
    error: str | None = None


async def _await(fut: Future[T]) -> T:
    return await asyncio.wait_for(asyncio.wrap_future(fut), ADMIN_TIMEOUT_S + 1)


#: a probe whose request failed asks for a new client at most this often
RENEW_INTERVAL_S = 10.0


class ClusterProbe:
    """Admin-protocol access to one cluster as its super-user, over the internal listener.

    librdkafka sends some admin requests to "the controller", which Kafka (KRaft) names as
    a random live broker, and remembers it until its next metadata refresh (5 minutes).
    Should that broker go away (removed by a scale-in, or stopped), every such request
    would wait for it, so after a failed request the probe starts over with a new client,
    which asks afresh.
    """

    def __init__(self, internal_bootstrap: str, user: str, password: str,
                 ca_file: str | None = None) -> None:
        if ca_file is None:
            self._config = sasl_config(internal_bootstrap, "PLAIN", user, password)
        else:  # the cluster's own CA: its internal listeners speak TLS
            self._config = {**sasl_config(internal_bootstrap, "PLAIN", user, password, "SASL_SSL"),
                            "ssl.ca.location": ca_file}
        self._admin = AdminClient(self._config)
        self._renewed_at = time.monotonic()

    def renew(self) -> None:
        """Start over with a new client (which learns the cluster's brokers anew)."""
        self._admin.poll(0)
        self._admin = AdminClient(self._config)
        self._renewed_at = time.monotonic()

    def controller(self) -> int:
        """The broker this probe's client takes for the controller (for diagnostics)."""
        return int(self._admin.list_topics(timeout=ADMIN_TIMEOUT_S).controller_id)

    @contextlib.contextmanager
    def _renewed_on_failure(self) -> Iterator[None]:
        try:
            yield
        except (KafkaException, TimeoutError):
            if time.monotonic() - self._renewed_at >= RENEW_INTERVAL_S:
                self.renew()
            raise

    async def check(self, metrics: list[tuple[str, int]]) -> HealthReport:
        report = HealthReport()
        report.quorum_leader = await self._quorum_leader(metrics)
        try:
            with self._renewed_on_failure():
                desc = await _await(self._admin.describe_cluster(request_timeout=ADMIN_TIMEOUT_S))
                meta = await asyncio.to_thread(self._admin.list_topics, timeout=ADMIN_TIMEOUT_S)
            report.registered_brokers = {n.id for n in desc.nodes}
            urp = offline = 0
            for topic in meta.topics.values():
                for part in topic.partitions.values():
                    if part.leader < 0:
                        offline += 1
                    if len(part.isrs) < len(part.replicas):
                        urp += 1
            report.under_replicated, report.offline = urp, offline
        except (KafkaException, TimeoutError) as exc:
            report.error = _describe(exc)
        # librdkafka queues its log lines until poll(); without it they pile up for ever
        self._admin.poll(0)
        return report

    async def replicas_on(self, broker_ids: set[int]) -> dict[int, int]:
        """How many partition replicas each of ``broker_ids`` still holds."""
        with self._renewed_on_failure():
            meta = await asyncio.to_thread(self._admin.list_topics, timeout=ADMIN_TIMEOUT_S)
        counts = dict.fromkeys(broker_ids, 0)
        for topic in meta.topics.values():
            for part in topic.partitions.values():
                for replica in part.replicas:
                    if replica in counts:
                        counts[replica] += 1
        return counts

    async def _quorum_leader(self, ports: list[tuple[str, int]]) -> int | None:
        """The leader every reachable node agrees on, if a majority of them can be read."""
        results = await asyncio.gather(*(scrape(h, p) for h, p in ports), return_exceptions=True)
        leaders = []
        for res in results:
            if isinstance(res, BaseException):
                continue
            leader = value(res, "kafka_server_raft_metrics_current_leader")
            if leader is not None and leader >= 0:
                leaders.append(int(leader))
        if len(leaders) * 2 <= len(ports) or len(set(leaders)) != 1:
            return None
        return leaders[0]

    async def ensure_scram_user(self, name: str, password: str) -> None:
        cred = UserScramCredentialUpsertion(
            name, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), password.encode()
        )
        with self._renewed_on_failure():
            await _await(self._admin.alter_user_scram_credentials([cred])[name])

    async def ensure_super_user(self, name: str, password: str, external_bootstrap: str) -> None:
        """Create the SCRAM super-user and check it can log in on the client listener."""
        await self.ensure_scram_user(name, password)
        await verify_scram_login(external_bootstrap, name, password)

    async def verify_login(self, name: str, password: str, external_bootstrap: str) -> None:
        await verify_scram_login(external_bootstrap, name, password)


async def verify_scram_login(bootstrap: str, user: str, password: str) -> None:
    """Raise unless ``user`` can log in on the client listener and describe the cluster."""
    admin = AdminClient(sasl_config(bootstrap, "SCRAM-SHA-512", user, password))
    await _await(admin.describe_cluster(request_timeout=ADMIN_TIMEOUT_S))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KafkaException) and exc.args:
        err = exc.args[0]
        text: Callable[[], str] | None = getattr(err, "str", None)
        return text() if text else str(err)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
