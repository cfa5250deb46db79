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

