"""The Kafka requests the executor sends: KIP-455 reassignments, preferred leader elections,
replication throttles, partition sizes.

Two libraries share the work. Neither has everything, and we never pack bytes ourselves:

* kafka-python's admin client: AlterPartitionReassignments, ListPartitionReassignments
  (librdkafka has no KIP-455 API) and DescribeLogDirs (for bytes copied so far);
* confluent-kafka (librdkafka): Metadata (DescribeTopics, DescribeCluster), ElectLeaders,
  DescribeConfigs and IncrementalAlterConfigs.

Every method blocks and returns or raises within a bounded time (``timeout`` goes to the
broker with each request, and we wait a little longer for the answer); the executor calls
them from a thread. Failures are ``AdminError``s, as in the admin library (``kafka/admin.py``).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import kafka.errors as kafka_errors
from confluent_kafka import ElectionType, KafkaError, KafkaException
from confluent_kafka import TopicPartition as ConfluentPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
from kafka.structs import TopicPartition as KafkaPythonPartition

from streamplane.kafka.errors import UNREACHABLE_CODES, AdminError, ClusterUnreachableError
from streamplane.kafka.settings import RDKAFKA_LOG, ClientSettings, admin_client, kafka_python_admin

T = TypeVar("T")

#: (topic, partition): how the executor names a partition everywhere
TP = tuple[str, int]

DEFAULT_TIMEOUT_S = 10.0
#: how much longer than the request timeout we wait for a client to report back
_GRACE_S = 2.0

LEADER_RATE = "leader.replication.throttled.rate"
FOLLOWER_RATE = "follower.replication.throttled.rate"
LEADER_REPLICAS = "leader.replication.throttled.replicas"
FOLLOWER_REPLICAS = "follower.replication.throttled.replicas"
BROKER_THROTTLE_CONFIGS = (LEADER_RATE, FOLLOWER_RATE)
TOPIC_THROTTLE_CONFIGS = (LEADER_REPLICAS, FOLLOWER_REPLICAS)
#: a throttled-replicas value that throttles every replica of the topic
ALL_REPLICAS = "*"

#: config sources (DescribeConfigs) that mean "set on this very broker or topic"
_DYNAMIC_BROKER = 2
_DYNAMIC_TOPIC = 1


#: kafka-python errors that mean the cluster did not answer
_KP_UNREACHABLE = (
    kafka_errors.KafkaTimeoutError, kafka_errors.KafkaConnectionError, kafka_errors.NodeNotReadyError,
    kafka_errors.RequestTimedOutError, kafka_errors.BrokerNotAvailableError,
)


@dataclass(frozen=True)
class PartitionState:
    """A partition as the metadata shows it: ``replicas[0]`` is the preferred leader."""

    replicas: tuple[int, ...]
    leader: int | None
    isr: tuple[int, ...]


@dataclass(frozen=True)
class Ongoing:
    """A reassignment in progress, as ListPartitionReassignments reports it."""

    replicas: tuple[int, ...]
    adding: tuple[int, ...]
    removing: tuple[int, ...]

    @property
    def target(self) -> tuple[int, ...]:
        """Where it is going: the controller lists the target replicas first, in order."""
        return tuple(r for r in self.replicas if r not in self.removing)


class ReassignmentAdmin:
    """The executor's view of one cluster. Safe to share between threads; ``close()`` it."""

    def __init__(self, settings: ClientSettings, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.settings = settings
        self.timeout = timeout
        self._closed = False
        # Both clients remember which broker is the controller, and Kafka (KRaft) names a
        # random live broker. Should that broker stop answering, each client would wait for
        # it for ever, so after a request goes unanswered we replace the client: the new one
        # asks again. Both are made on first use, under these locks.
        self._confluent: Any = None
        self._confluent_stale = False
        self._confluent_lock = threading.Lock()
        self._kafka_python: Any = None
        self._kp_lock = threading.Lock()  # also keeps kafka-python's requests one at a time

    def close(self) -> None:
        self._closed = True
        with self._kp_lock:
            if self._kafka_python is not None:
                self._kafka_python.close()
                self._kafka_python = None
        with self._confluent_lock:
            if self._confluent is not None:
                self._confluent.poll(0)
                self._confluent = None

    def __enter__(self) -> ReassignmentAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the cluster's shape (confluent-kafka) --------------------------------------

    def brokers(self) -> set[int]:
        """Ids of the brokers registered in the cluster."""
        future = self._client.describe_cluster(request_timeout=self.timeout)
        return {n.id for n in self._wait(future, "describe the cluster").nodes}

    def partitions(self, topics: Iterable[str]) -> dict[TP, PartitionState]:
        """Replicas, leader and ISR of every partition of ``topics``; topics that do not
        exist are left out. (Metadata, which any broker answers.)"""
        found: dict[TP, PartitionState] = {}
        client = self._client
        for name in sorted(set(topics)):
            try:
                meta = client.list_topics(topic=name, timeout=self.timeout)
            except KafkaException as exc:
                raise self._failure(exc.args[0], f"describe topic {name!r}") from None
            finally:
                client.poll(0)
            topic = meta.topics.get(name)
            if topic is None or topic.error is not None:
                if topic is not None and topic.error.code() not in (
                        KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.UNKNOWN_TOPIC_ID):
                    raise self._failure(topic.error, f"describe topic {name!r}")
                continue
            for pid, part in topic.partitions.items():
                found[(name, int(pid))] = PartitionState(
                    replicas=tuple(int(r) for r in part.replicas),
                    leader=int(part.leader) if part.leader is not None and part.leader >= 0 else None,
                    isr=tuple(int(r) for r in part.isrs),
                )
        return found

    # ---- reassignments (kafka-python) ----------------------------------------------

    def ongoing(self, partitions: Iterable[TP] | None = None) -> dict[TP, Ongoing]:
        """Reassignments in progress: of ``partitions``, or of the whole cluster (None)."""
        wanted = None if partitions is None else [KafkaPythonPartition(t, p) for t, p in partitions]
        if wanted == []:
            return {}
        listed = self._kp("list partition reassignments",
                          lambda c: c.list_partition_reassignments(wanted, timeout_ms=self._timeout_ms))
        return {
            (tp.topic, tp.partition): Ongoing(tuple(r["replicas"]), tuple(r["adding_replicas"]),
                                              tuple(r["removing_replicas"]))
            for tp, r in listed.items()
        }

    def reassign(self, targets: Mapping[TP, Sequence[int] | None]) -> dict[TP, str | None]:
        """Start reassignments (None cancels one, reverting it to its original replicas).

        Returns each partition's Kafka error name, or None where the controller accepted it.
        """
        if not targets:
            return {}
        request = {KafkaPythonPartition(t, p): (None if r is None else list(r)) for (t, p), r in targets.items()}
        answer = self._kp("alter partition reassignments",
                          lambda c: c.alter_partition_reassignments(request, timeout_ms=self._timeout_ms))
        result: dict[TP, str | None] = {tp: "NO_ANSWER" for tp in targets}
        for tp, error in answer.items():
            result[(tp.topic, tp.partition)] = None if error is None else _kafka_python_name(error)
        return result

    def replica_sizes(self, partitions: Iterable[TP], brokers: Iterable[int]) -> dict[tuple[str, int, int], int]:
        """Bytes of each partition's log on each of ``brokers`` that holds it:
        ``(topic, partition, broker) -> size``. A broker that does not answer is left out
        (all of them failing raises)."""
        by_topic: dict[str, list[int]] = {}
        for t, p in sorted(set(partitions)):
            by_topic.setdefault(t, []).append(p)
        nodes = sorted(set(brokers))
        if not by_topic or not nodes:
            return {}
        answer: list[Any] = []
        failure: AdminError | None = None
        for node in nodes:  # one at a time, so one silent broker does not hide the others
            try:
                answer += self._kp(f"describe the log dirs of broker {node}",
                                   functools.partial(_describe_log_dirs, topics=by_topic, broker=node))
            except AdminError as exc:
                failure = exc
        if failure is not None and not answer:
            raise failure
        sizes: dict[tuple[str, int, int], int] = {}
        for per_broker in answer:
            broker = int(per_broker["broker"])
            for log_dir in per_broker["log_dirs"]:
                if log_dir.get("error_code", 0):
                    continue
                for topic in log_dir["topics"]:
                    for part in topic["partitions"]:
                        if part.get("is_future_key"):
                            continue
                        key = (topic["name"], int(part["partition_index"]), broker)
                        sizes[key] = max(sizes.get(key, 0), int(part["partition_size"]))
        return sizes

    # ---- leadership (confluent-kafka) ----------------------------------------------

    def elect_preferred(self, partitions: Iterable[TP]) -> dict[TP, str | None]:
        """Preferred leader election: make ``replicas[0]`` lead. Returns each partition's
        Kafka error name, or None where the preferred replica leads now (or already did)."""
        wanted = sorted(set(partitions))
        if not wanted:
            return {}
        # confluent-kafka 2.16's binding fails on any timeout keyword here (SystemError);
        # without them the request times out after socket.timeout.ms, which we set
        future = self._client.elect_leaders(
            ElectionType.PREFERRED, [ConfluentPartition(t, p) for t, p in wanted])
        answer = self._wait(future, "elect preferred leaders")
        result: dict[TP, str | None] = {tp: "NO_ANSWER" for tp in wanted}
        for ctp, error in answer.items():
            name = _confluent_name(error)
            result[(ctp.topic, ctp.partition)] = None if name in (None, "ELECTION_NOT_NEEDED") else name
        return result

    # ---- throttle configs (confluent-kafka) ----------------------------------------

    def broker_configs(self, brokers: Iterable[int], names: Sequence[str]) -> dict[int, dict[str, str]]:
        """The values of ``names`` set dynamically on each broker itself (not defaults,
        not the cluster-wide dynamic default)."""
        futures = {b: self._client.describe_configs([ConfigResource(ResourceType.BROKER, str(b))],
                                                    request_timeout=self.timeout)
                   for b in sorted(set(brokers))}
        found: dict[int, dict[str, str]] = {}
        for broker, by_resource in futures.items():
            (future,) = by_resource.values()
            entries = self._wait(future, f"describe the configs of broker {broker}")
            found[broker] = {k: e.value for k, e in entries.items()
                             if k in names and _source(e) == _DYNAMIC_BROKER and e.value is not None}
        return found

    def topic_configs(self, topics: Iterable[str], names: Sequence[str]) -> dict[str, dict[str, str]]:
        """The values of ``names`` set on each topic; topics that do not exist are left out."""
        resources = [ConfigResource(ResourceType.TOPIC, t) for t in sorted(set(topics))]
        if not resources:
            return {}
        futures = self._client.describe_configs(resources, request_timeout=self.timeout)
        found: dict[str, dict[str, str]] = {}
        for resource, future in futures.items():
            try:
                entries = self._wait(future, f"describe the configs of topic {resource.name!r}")
            except AdminError as exc:
                if exc.kafka_error in ("UNKNOWN_TOPIC_OR_PART", "UNKNOWN_TOPIC_ID"):
                    continue
                raise
            found[resource.name] = {k: e.value for k, e in entries.items()
                                    if k in names and _source(e) == _DYNAMIC_TOPIC and e.value is not None}
        return found

    def alter_broker_configs(self, changes: Mapping[int, Mapping[str, str | None]]) -> dict[int, AdminError]:
        """Set (a value) or remove (None) dynamic configs of each broker.

        Each broker takes its own request (librdkafka sends a broker's configs to that very
        broker), so one that does not answer fails alone: returns the brokers that failed.
        """
        pending = []
        for broker, configs in sorted(changes.items()):
            if configs:
                resource = ConfigResource(ResourceType.BROKER, str(broker),
                                          incremental_configs=_entries(configs))
                futures = self._client.incremental_alter_configs([resource], request_timeout=self.timeout)
                pending.append((broker, futures[resource]))
        failed: dict[int, AdminError] = {}
        for broker, future in pending:
            try:
                self._wait(future, f"change the replication throttle of broker {broker}")
            except AdminError as exc:
                failed[broker] = exc
        return failed

    def alter_topic_configs(self, changes: Mapping[str, Mapping[str, str | None]],
                            ignore_missing: bool = True) -> None:
        """Set (a value) or remove (None) configs of each topic; topics deleted in the
        meantime are skipped unless ``ignore_missing`` is False."""
        resources = [ConfigResource(ResourceType.TOPIC, t, incremental_configs=_entries(c))
                     for t, c in sorted(changes.items()) if c]
        if not resources:
            return
        futures = self._client.incremental_alter_configs(resources, request_timeout=self.timeout)
        for resource, future in futures.items():
            try:
                self._wait(future, f"change the replication throttle of topic {resource.name!r}")
            except AdminError as exc:
                missing = exc.kafka_error in ("UNKNOWN_TOPIC_OR_PART", "UNKNOWN_TOPIC_ID")
                if not (missing and ignore_missing):
                    raise

    def append_topic_configs(self, appends: Mapping[str, Mapping[str, Sequence[str]]]) -> None:
        """Add entries to list configs of each topic (IncrementalAlterConfigs APPEND, so
        entries someone else adds meanwhile stay)."""
        resources = [
            ConfigResource(ResourceType.TOPIC, t, incremental_configs=[
                ConfigEntry(k, ",".join(v), incremental_operation=AlterConfigOpType.APPEND)
                for k, v in sorted(configs.items()) if v])
            for t, configs in sorted(appends.items()) if any(configs.values())
        ]
        if not resources:
            return
        futures = self._client.incremental_alter_configs(resources, request_timeout=self.timeout)
        for resource, future in futures.items():
            self._wait(future, f"throttle the replicas of topic {resource.name!r}")

    # ---- plumbing ------------------------------------------------------------------

    @property
    def _client(self) -> Any:
        with self._confluent_lock:
            if self._closed:
                raise AdminError("this ReassignmentAdmin was closed; create a new one")
            if self._confluent is None or self._confluent_stale:
                self._confluent_stale = False
                self._confluent = admin_client(self.settings, self._timeout_ms / 1000,
                                               RDKAFKA_LOG.getChild("executor"))
            return self._confluent

    @property
    def _timeout_ms(self) -> int:
        return int(self.timeout * 1000)

    def _wait(self, future: Future[T], action: str) -> T:
        try:
            return future.result(timeout=self.timeout + _GRACE_S)
        except KafkaException as exc:
            raise self._failure(exc.args[0], action) from None
        except TimeoutError:
            raise self._unreachable(action, None) from None
        finally:
            # librdkafka hands over its log lines only in poll()
            with self._confluent_lock:
                if self._confluent is not None:
                    self._confluent.poll(0)

    def _failure(self, err: KafkaError, action: str) -> AdminError:
        if err.code() in UNREACHABLE_CODES:
            return self._unreachable(action, err.str())
        return AdminError(f"cannot {action}: {err.str()} ({err.name()})", err.name(), bool(err.retriable()))

    def _kp(self, action: str, call: Callable[[Any], T]) -> T:
        with self._kp_lock:
            if self._closed:
                raise AdminError("this ReassignmentAdmin was closed; create a new one")
            try:
                if self._kafka_python is None:
                    self._kafka_python = kafka_python_admin(self.settings, self._timeout_ms / 1000,
                                                            "streamplane-executor")
                return call(self._kafka_python)
            except kafka_errors.KafkaError as exc:
                if isinstance(exc, _KP_UNREACHABLE):
                    self._drop_kafka_python()
                    raise self._unreachable(action, str(exc)) from None
                name = _kafka_python_name(type(exc))
                raise AdminError(f"cannot {action}: {exc}", name, bool(exc.retriable)) from None
            except RuntimeError as exc:  # e.g. "Failed to find active controller id!"
                self._drop_kafka_python()
                raise AdminError(f"cannot {action}: {exc}", None, retriable=True) from None

    def _drop_kafka_python(self) -> None:
        """Forget the kafka-python client (caller holds its lock); closing it may wait for
        its I/O thread, so that happens on a thread of its own."""
        client, self._kafka_python = self._kafka_python, None
        if client is not None:
            threading.Thread(target=client.close, name="kafka-python-close", daemon=True).start()

    def _unreachable(self, action: str, why: str | None) -> ClusterUnreachableError:
        # the next request gets a client that looks afresh (not this one's other requests:
        # replacing the client now would abort them)
        self._confluent_stale = True
        suffix = f"; last problem: {why}" if why else ""
        return ClusterUnreachableError(
            f"cannot {action}: the Kafka cluster at {self.settings.bootstrap} did not answer "
            f"within {self.timeout:g} s{suffix}", "_TIMED_OUT", retriable=True)


def _describe_log_dirs(client: Any, topics: dict[str, list[int]], broker: int) -> list[Any]:
    return list(client.describe_log_dirs(topics, brokers=[broker]))


def _entries(configs: Mapping[str, str | None]) -> list[Any]:
    return [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) if v is not None
            else ConfigEntry(k, None, incremental_operation=AlterConfigOpType.DELETE)
            for k, v in sorted(configs.items())]


def _source(entry: Any) -> int:
    return int(getattr(entry.source, "value", entry.source))


def _confluent_name(error: Any) -> str | None:
    """librdkafka hands per-partition results as None, a KafkaError or a KafkaException."""
    if error is None:
        return None
    if isinstance(error, KafkaException):
        error = error.args[0]
    if isinstance(error, KafkaError):
        return None if error.code() == KafkaError.NO_ERROR else str(error.name())
    return str(error)


def _kafka_python_name(error: type[Exception] | Exception) -> str:
    cls = error if isinstance(error, type) else type(error)
    return str(getattr(cls, "message", cls.__name__))
