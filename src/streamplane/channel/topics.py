"""The channel's two compacted topics on the system cluster, created and kept compacted."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from streamplane.channel.clients import describe_kafka_error
from streamplane.channel.config import ChannelConfig, ChannelError

ADMIN_TIMEOUT_S = 15.0
DEFAULT_PARTITIONS = 3
MAX_REPLICATION_FACTOR = 3
#: compaction keeps one record per key, and cleans only closed segments: rolling them
#: every 15 minutes (or 64 MiB) is what keeps a returning satellite's catch-up short
TOPIC_CONFIGS = {
    "cleanup.policy": "compact",
    "segment.ms": str(15 * 60 * 1000),
    "segment.bytes": str(64 * 1024 * 1024),
}


def replication_for(brokers: int) -> tuple[int, int]:
    """(replication factor, min.insync.replicas) for a system cluster of ``brokers``.

    With three replicas, two must acknowledge so one broker can be lost without losing
    writes; with fewer, requiring more than one would stop all writes when one is down.
    """
    rf = max(1, min(MAX_REPLICATION_FACTOR, brokers))
    return rf, 2 if rf >= 3 else 1


def ensure_topics(config: ChannelConfig, partitions: int = DEFAULT_PARTITIONS) -> list[str]:
    """Create the desired, status and satellites topics if missing and make sure they are compacted.

    Blocking (admin requests); from asyncio call it through ``asyncio.to_thread``.
    Returns one sentence per thing it did.
    """
    admin = AdminClient(config.client_config())
    topics = [config.desired_topic, config.status_topic, config.satellites_topic]
    try:
        brokers = len(_result(admin.describe_cluster(request_timeout=ADMIN_TIMEOUT_S)).nodes)
        existing = set(admin.list_topics(timeout=ADMIN_TIMEOUT_S).topics)
    except KafkaException as exc:
        raise ChannelError(f"cannot reach the system cluster at {config.bootstrap}: "
                           f"{describe_kafka_error(exc)}") from None
    rf, min_isr = replication_for(brokers)
    said = _create(admin, [t for t in topics if t not in existing], partitions, rf, min_isr)
    said += _compact(admin, [t for t in topics if t in existing])
    return said


def _create(admin: AdminClient, names: list[str], partitions: int, rf: int,
            min_isr: int) -> list[str]:
    if not names:
        return []
    configs = {**TOPIC_CONFIGS, "min.insync.replicas": str(min_isr)}
    new = [NewTopic(n, num_partitions=partitions, replication_factor=rf, config=configs)
           for n in names]
    said = []
    for name, fut in admin.create_topics(new, request_timeout=ADMIN_TIMEOUT_S).items():
        try:
            _result(fut)
            said.append(f"created compacted topic {name} ({partitions} partitions, "
                        f"replication factor {rf}, min.insync.replicas {min_isr})")
        except KafkaException as exc:
            if exc.args and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                said += _compact(admin, [name])
                continue
            raise ChannelError(f"cannot create topic {name}: {describe_kafka_error(exc)}"
                               ) from None
    return said


def _compact(admin: AdminClient, names: list[str]) -> list[str]:
    """Bring existing topics' configs to TOPIC_CONFIGS (a topic the broker auto-created
    would otherwise delete old PSCs instead of compacting them)."""
    if not names:
        return []
    resources = [ConfigResource(ResourceType.TOPIC, n) for n in names]
    try:
        current = {res.name: _result(fut) for res, fut in
                   admin.describe_configs(resources, request_timeout=ADMIN_TIMEOUT_S).items()}
    except KafkaException as exc:
        raise ChannelError(f"cannot read the configs of {', '.join(names)}: "
                           f"{describe_kafka_error(exc)}") from None
    said = []
    for name in names:
        wrong = {k: v for k, v in TOPIC_CONFIGS.items()
                 if k not in current[name] or current[name][k].value != v}
        if not wrong:
            continue
        entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                   for k, v in wrong.items()]
        res = ConfigResource(ResourceType.TOPIC, name, incremental_configs=entries)
        try:
            for fut in admin.incremental_alter_configs([res]).values():
                _result(fut)
        except KafkaException as exc:
            raise ChannelError(f"topic {name} exists but cannot be made compacted: "
                               f"{describe_kafka_error(exc)}; delete it and run again") from None
        said.append(f"set {', '.join(f'{k}={v}' for k, v in sorted(wrong.items()))} "
                    f"on existing topic {name}")
    return said


def _result(fut: Any) -> Any:
    try:
        return fut.result(timeout=ADMIN_TIMEOUT_S + 5)
    except TimeoutError:
        raise ChannelError("the system cluster did not answer an admin request within "
                           f"{ADMIN_TIMEOUT_S + 5:.0f} s; check that it is running") from None
