"""How Streamplane reaches Kafka: client settings (`settings`), the admin library (`admin`:
topics, groups, SCRAM users, ACLs and quotas of a cluster), its errors and models."""

from streamplane.kafka.acls import CLIENT_OPERATIONS
from streamplane.kafka.admin import DEFAULT_TIMEOUT_S, ClusterAdmin, is_internal_topic
from streamplane.kafka.errors import (
    AdminError,
    AuthorizationError,
    ClusterUnreachableError,
    InvalidAclError,
    InvalidTopicError,
    InvalidUserError,
    TopicExistsError,
    TopicNotFoundError,
    UserNotFoundError,
)
from streamplane.kafka.models import AclEntry, ConfigSource, PartitionInfo, TopicConfig, TopicDescription, TopicSummary

__all__ = [
    "CLIENT_OPERATIONS",
    "DEFAULT_TIMEOUT_S",
    "AclEntry",
    "AdminError",
    "AuthorizationError",
    "ClusterAdmin",
    "ClusterUnreachableError",
    "ConfigSource",
    "InvalidAclError",
    "InvalidTopicError",
    "InvalidUserError",
    "PartitionInfo",
    "TopicConfig",
    "TopicDescription",
    "TopicExistsError",
    "TopicNotFoundError",
    "TopicSummary",
    "UserNotFoundError",
    "is_internal_topic",
]
