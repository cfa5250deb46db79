"""What capacity units buy: the one table every other part reads.

A dedicated cluster is sized in CKUs; basic and standard clusters are tenants of a shared
physical cluster with fixed limits per type. Figures follow the shape of the public
managed offerings (ingress ≈ 1/3 of egress, a few thousand partitions per unit), scaled to
what a broker of this product's default size carries.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_CKU = 1
MAX_CKU = 8


@dataclass(frozen=True)
class Capacity:
    brokers: int
    ingress_mbps: int
    egress_mbps: int
    partitions: int
    connections: int
    request_rate: int  # requests/s


def cku_capacity(cku: int) -> Capacity:
    """The capacity of a dedicated cluster of ``cku`` units (1 CKU = 3 brokers, +1 per unit)."""
    if not MIN_CKU <= cku <= MAX_CKU:
        raise ValueError(f"cku must be between {MIN_CKU} and {MAX_CKU}, got {cku}")
    return Capacity(
        brokers=2 + cku,
        ingress_mbps=50 * cku,
        egress_mbps=150 * cku,
        partitions=1500 * cku,
        connections=3000 * cku,
        request_rate=5000 * cku,
    )


#: brokers of a shared physical cluster that hosts basic/standard tenants
SHARED_CLUSTER_BROKERS = 3

MIB = 1024 * 1024


@dataclass(frozen=True)
class TenantLimits:
    """What one basic/standard logical cluster may use of the shared cluster it lives on."""

    #: bytes/s the tenant may produce, and fetch, in all
    produce_bytes_per_s: int
    fetch_bytes_per_s: int
    #: requests/s the tenant may send (see ``REQUEST_COST_MS`` for how Kafka enforces it)
    request_rate: int
    #: client connections open at once, through the gateway
    max_connections: int
    #: partitions and topics the tenant may have
    max_partitions: int
    max_topics: int


#: the one table of tenant limits, per cluster type
TENANT_TYPES: dict[str, TenantLimits] = {
    "basic": TenantLimits(produce_bytes_per_s=5 * MIB, fetch_bytes_per_s=15 * MIB,
                          request_rate=500, max_connections=100, max_partitions=100,
                          max_topics=50),
    "standard": TenantLimits(produce_bytes_per_s=25 * MIB, fetch_bytes_per_s=75 * MIB,
                             request_rate=2500, max_connections=1000, max_partitions=500,
                             max_topics=250),
}

#: Kafka has no requests-per-second quota. Its request quota, ``request_percentage``, is
#: the share of one broker thread (request handler plus network thread time) a principal
#: may use per quota window, 100 being one whole thread. We convert with the mean thread
#: time of the small produce, fetch and metadata requests clients send on a broker of this
#: product's size: ``request_rate`` requests/s x 1 ms = that many ms of thread time per
#: second, i.e. ``request_rate / 10`` percent of a thread. A tenant sending heavier requests
#: is held to fewer of them, which is the point: the quota protects broker time.
REQUEST_COST_MS = 1.0


def tenant_limits(cluster_type: str) -> TenantLimits:
    """The limits of a ``basic`` or ``standard`` logical cluster."""
    try:
        return TENANT_TYPES[cluster_type]
    except KeyError:
        raise ValueError(f"cluster type {cluster_type!r} has no tenant limits; "
                         f"it must be one of {', '.join(TENANT_TYPES)}") from None


def tenant_quotas(cluster_type: str, brokers: int = SHARED_CLUSTER_BROKERS) -> dict[str, float]:
    """The Kafka client quotas (``AlterClientQuotas`` keys) to set on a tenant's principal.

    Kafka enforces a client quota on each broker separately, so the tenant's rates are
    shared out over the ``brokers`` of its physical cluster: with leaders spread evenly the
    tenant gets its whole rate, and never more than it, however its partitions are placed.
    """
    if brokers < 1:
        raise ValueError(f"a shared cluster has at least 1 broker, not {brokers}")
    limits = tenant_limits(cluster_type)
    return {
        # Kafka takes whole bytes per second only
        "producer_byte_rate": float(limits.produce_bytes_per_s // brokers),
        "consumer_byte_rate": float(limits.fetch_bytes_per_s // brokers),
        "request_percentage": limits.request_rate * REQUEST_COST_MS / 1000 * 100 / brokers,
    }


#: the tenant limits as capacities (what the partition checks of the API read)
TENANT_LIMITS: dict[str, Capacity] = {
    cluster_type: Capacity(brokers=0, ingress_mbps=limits.produce_bytes_per_s // MIB,
                           egress_mbps=limits.fetch_bytes_per_s // MIB,
                           partitions=limits.max_partitions,
                           connections=limits.max_connections,
                           request_rate=limits.request_rate)
    for cluster_type, limits in TENANT_TYPES.items()
}


def cluster_capacity(cluster_type: str, cku: int | None) -> Capacity:
    if cluster_type == "dedicated":
        if cku is None:
            raise ValueError("a dedicated cluster needs a cku")
        return cku_capacity(cku)
    return TENANT_LIMITS[cluster_type]
