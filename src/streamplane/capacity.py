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


#: limits of one tenant (logical cluster) on a shared physical cluster
TENANT_LIMITS: dict[str, Capacity] = {
    "basic": Capacity(brokers=0, ingress_mbps=5, egress_mbps=15, partitions=100,
                      connections=100, request_rate=500),
    "standard": Capacity(brokers=0, ingress_mbps=25, egress_mbps=75, partitions=500,
                         connections=1000, request_rate=2500),
}

#: brokers of a shared physical cluster that hosts basic/standard tenants
SHARED_CLUSTER_BROKERS = 3


def cluster_capacity(cluster_type: str, cku: int | None) -> Capacity:
    if cluster_type == "dedicated":
        if cku is None:
            raise ValueError("a dedicated cluster needs a cku")
        return cku_capacity(cku)
    return TENANT_LIMITS[cluster_type]
