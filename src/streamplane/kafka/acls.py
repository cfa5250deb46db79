"""Which Kafka ACLs make an API key a full client of its topics, and nothing more.

Every operation here was checked with real clients (tests/kafka_admin):

- topics: CREATE (CreateTopics needs it on the topic or the cluster; the topic is
  enough), DELETE (DeleteTopics, DeleteRecords), DESCRIBE (metadata, offsets),
  DESCRIBE_CONFIGS / ALTER_CONFIGS (topic configs), ALTER (CreatePartitions),
  READ (fetch, committing offsets) and WRITE (produce). Since Kafka 3.0 (KIP-679) WRITE
  on a topic also allows an idempotent producer, so IDEMPOTENT_WRITE on the cluster is
  not granted.
- groups: READ (join, commit, fetch offsets), DESCRIBE (describe, list), DELETE
  (delete a group or its offsets).
- transactional ids: WRITE (transactional produce) and DESCRIBE.

Nothing is granted on the cluster resource, so the key cannot change broker configs,
ACLs, SCRAM credentials, quotas or partition assignments.
"""

from __future__ import annotations

import re
from typing import Any

from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

from streamplane.kafka.errors import InvalidAclError
from streamplane.kafka.models import AclEntry

CLIENT_OPERATIONS: dict[str, tuple[str, ...]] = {
    "TOPIC": ("CREATE", "DELETE", "DESCRIBE", "DESCRIBE_CONFIGS", "ALTER", "ALTER_CONFIGS",
              "READ", "WRITE"),
    "GROUP": ("READ", "DESCRIBE", "DELETE"),
    "TRANSACTIONAL_ID": ("WRITE", "DESCRIBE"),
}
_PREFIX = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


def principal(user_name: str) -> str:
    """The Kafka principal SCRAM authentication gives ``user_name``."""
    return f"User:{user_name}"


def client_access(user_name: str, prefix: str | None) -> list[AclEntry]:
    """The ALLOW bindings that make ``user_name`` a client of every topic, group and
    transactional id (``prefix=None``) or only of those whose names start with ``prefix``."""
    if prefix is None:
        name, pattern = "*", "LITERAL"
    elif _PREFIX.match(prefix):
        name, pattern = prefix, "PREFIXED"
    else:
        raise InvalidAclError(
            f"resource prefix {prefix!r} must be 1-200 letters, digits, '.', '_' or '-' "
            "(the characters a topic name may use), e.g. 'lkc-abc123_'"
        )
    who = principal(user_name)
    return [
        AclEntry(principal=who, resource_type=rtype, resource_name=name, pattern_type=pattern,
                 operation=op)
        for rtype, ops in CLIENT_OPERATIONS.items()
        for op in ops
    ]


def binding(entry: AclEntry) -> Any:
    """``entry`` as confluent-kafka's ``AclBinding``."""
    return AclBinding(entry.resource_type, entry.resource_name, entry.pattern_type,
                      entry.principal, entry.host, entry.operation, entry.permission)


def principal_filter(user_name: str) -> Any:
    """A filter that matches every ACL of ``user_name``."""
    return AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY,
                            principal(user_name), None, AclOperation.ANY,
                            AclPermissionType.ANY)


def entry(binding: Any) -> AclEntry:
    """A confluent-kafka ``AclBinding`` as our ``AclEntry``."""
    return AclEntry(
        principal=binding.principal, resource_type=binding.restype.name,
        resource_name=binding.name, pattern_type=binding.resource_pattern_type.name,
        operation=binding.operation.name, permission=binding.permission_type.name,
        host=binding.host,
    )


def order(e: AclEntry) -> tuple[str, ...]:
    """A stable order for listing ACL entries."""
    return (e.resource_type, e.pattern_type, e.resource_name, e.operation, e.permission, e.host)
