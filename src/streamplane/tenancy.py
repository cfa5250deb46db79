"""Names every layer agrees on: the system cluster, tenant namespaces, the default cell."""

from __future__ import annotations

#: the physical cluster that carries the control channel
SYSTEM_CLUSTER_ID = "system"
#: the cell of a shared cluster's brokers, tenants and internal topics unless told otherwise
DEFAULT_CELL = "cell-0"


def tenant_prefix(cluster_id: str) -> str:
    """Every Kafka resource of a basic/standard cluster starts with this."""
    return f"{cluster_id}_"
