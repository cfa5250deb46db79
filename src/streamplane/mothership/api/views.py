"""Store records as the API shows them (the wire schemas are in ``streamplane.models.api``)."""

from __future__ import annotations

from streamplane.models import api as s
from streamplane.mothership.store import ApiKey, ClusterType, LogicalCluster, Operation


def cluster_out(lc: LogicalCluster, tenant_protocol: str = "SASL_PLAINTEXT") -> s.ClusterOut:
    out = s.ClusterOut.model_validate(lc.model_dump(include=set(s.ClusterOut.model_fields)))
    if lc.type != ClusterType.DEDICATED:
        out.security_protocol = tenant_protocol
    return out


def operation_out(op: Operation) -> s.OperationOut:
    return s.OperationOut.model_validate(op.model_dump(include=set(s.OperationOut.model_fields)))


def api_key_out(k: ApiKey) -> s.ApiKeyOut:
    return s.ApiKeyOut(key=k.id, cluster_id=k.logical_cluster_id, description=k.description,
                       created_at=k.created_at, revoked_at=k.revoked_at)
