"""The mothership's Kafka admin library: topics, SCRAM users and ACLs of a customer cluster."""

from streamplane.mothership.kafka_admin.acls import CLIENT_OPERATIONS
from streamplane.mothership.kafka_admin.client import DEFAULT_TIMEOUT_S, ClusterAdmin, is_internal_topic
from streamplane.mothership.kafka_admin.errors import (
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
from streamplane.mothership.kafka_admin.models import (
    AclEntry,
    ConfigSource,
    PartitionInfo,
    TopicConfig,
    TopicDescription,
    TopicSummary,
)

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
