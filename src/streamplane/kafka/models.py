"""Typed results of the admin library (frozen Pydantic models, ready for the REST API)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True)


class TopicSummary(_Result):
    name: str
    partitions: int
    replication_factor: int


class PartitionInfo(_Result):
    id: int
    #: broker id of the leader; None while the partition is offline
    leader: int | None
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


class ConfigSource(StrEnum):
    TOPIC = "topic"  # set on this topic
    BROKER = "broker"  # a broker-level setting (static or dynamic) applies
    DEFAULT = "default"  # Kafka's built-in default
    OTHER = "other"


class TopicConfig(_Result):
    name: str
    #: None for sensitive values, which Kafka never returns
    value: str | None
    source: ConfigSource
    read_only: bool = False
    sensitive: bool = False


class TopicDescription(_Result):
    name: str
    topic_id: str
    internal: bool
    partitions: tuple[PartitionInfo, ...]
    #: every config whose value is not Kafka's built-in default, by name
    configs: dict[str, TopicConfig]

    @property
    def replication_factor(self) -> int:
        return max((len(p.replicas) for p in self.partitions), default=0)

    @property
    def overrides(self) -> dict[str, str | None]:
        """Configs set on this topic itself (what ``alter_topic_configs`` changes)."""
        return {k: c.value for k, c in self.configs.items() if c.source == ConfigSource.TOPIC}


class AclEntry(_Result):
    """One Kafka ACL binding, with Kafka's own names for its parts."""

    principal: str  # "User:<name>"
    resource_type: str  # TOPIC, GROUP, TRANSACTIONAL_ID, CLUSTER
    resource_name: str
    pattern_type: str  # LITERAL or PREFIXED
    operation: str  # READ, WRITE, CREATE, ...
    permission: str = "ALLOW"
    host: str = "*"
