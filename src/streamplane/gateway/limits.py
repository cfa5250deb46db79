"""Per-tenant limits the gateway enforces itself: connections, topics and partitions.

Byte and request rates are Kafka client quotas on the tenant's principal, enforced by the
brokers; the gateway passes their throttle times back untouched. What Kafka cannot count
per tenant (connections through the gateway, topics and partitions under a name prefix)
is counted here, from what the tenant's own broker connection sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kafka.protocol.api_key import ApiKey
from kafka.protocol.metadata import MetadataRequest

from streamplane.capacity import TenantLimits
from streamplane.gateway.namespace import Namespace
from streamplane.gateway.protocol import Request
from streamplane.gateway.upstream import UpstreamConnection

#: the APIs that add topics or partitions
LIMITED_APIS = frozenset({ApiKey.CreateTopics, ApiKey.CreatePartitions})
#: Kafka's error for a request that a cluster's policy refuses
POLICY_VIOLATION = 44
#: the Metadata version the gateway asks with for the tenant's topics (Kafka 4 serves v4+)
_METADATA_VERSION = 12


@dataclass(frozen=True)
class TenantUsage:
    """A tenant's topics (as it names them) and their partition counts."""

    partitions: Mapping[str, int]

    @property
    def topics(self) -> int:
        return len(self.partitions)

    @property
    def total_partitions(self) -> int:
        return sum(self.partitions.values())


def connection_refusal(cluster_id: str, open_now: int, limits: TenantLimits) -> str | None:
    """Why one more connection of ``cluster_id`` is refused, or None if it is not."""
    if open_now < limits.max_connections:
        return None
    return (f"logical cluster {cluster_id} has reached its limit of {limits.max_connections} "
            "connections; close some of its clients' connections or move to a larger cluster type")


async def usage(upstream: UpstreamConnection, ns: Namespace) -> TenantUsage:
    """Ask the broker, as the tenant, which of its topics exist (its ACLs show only those)."""
    broker = upstream.versions.get(ApiKey.Metadata, (0, 0))
    version = min(_METADATA_VERSION, broker[1])
    request = MetadataRequest[version](topics=None, allow_auto_topic_creation=False,
                                       include_topic_authorized_operations=False)
    response = await upstream.request(request, version)
    partitions = {}
    for topic in response.topics or []:
        name = ns.outward(topic.name or "")
        if name is not None and not topic.error_code:
            partitions[name] = len(topic.partitions or [])
    return TenantUsage(partitions)


def refusal(request: Request, cluster_id: str, used: TenantUsage, limits: TenantLimits,
            default_partitions: int) -> str | None:
    """Why a CreateTopics or CreatePartitions request would take the tenant past its
    limits (the whole request is refused then), or None if it would not."""
    body = request.body
    if request.api_key == ApiKey.CreateTopics:
        new = {t.name: _asked_partitions(t, default_partitions) for t in body.topics or []
               if t.name not in used.partitions}
        return (_over(cluster_id, "topics", limits.max_topics, used.topics, len(new), "topic")
                or _over(cluster_id, "partitions", limits.max_partitions,
                         used.total_partitions, sum(new.values()), "partition"))
    if request.api_key == ApiKey.CreatePartitions:
        added = sum(max(0, int(t.count) - used.partitions[t.name]) for t in body.topics or []
                    if t.name in used.partitions)
        return _over(cluster_id, "partitions", limits.max_partitions, used.total_partitions,
                     added, "partition")
    return None


def _asked_partitions(topic: Any, default_partitions: int) -> int:
    if topic.assignments:
        return len(topic.assignments)
    return default_partitions if int(topic.num_partitions) < 0 else int(topic.num_partitions)


def _over(cluster_id: str, what: str, limit: int, existing: int, asked: int,
          one: str) -> str | None:
    if asked == 0 or existing + asked <= limit:
        return None
    return (f"logical cluster {cluster_id} may have at most {limit} {what}: it has {existing} "
            f"and this request asks for {asked} more {one if asked == 1 else what}; "
            "nothing was created")
