"""The mothership's state store: SQLAlchemy 2 on SQLite or PostgreSQL, Alembic migrations,
secrets hashed or encrypted at rest."""

from streamplane.mothership.store.errors import (
    AlreadyExistsError,
    ConflictError,
    IdempotencyKeyReusedError,
    NotFoundError,
    SecretDecryptionError,
    StoreError,
)
from streamplane.mothership.store.idempotency import request_fingerprint
from streamplane.mothership.store.records import (
    ApiKey,
    ClaimOutcome,
    ClusterType,
    IdempotencyClaim,
    IdempotencyRecord,
    IssuedApiKey,
    LogicalCluster,
    LogicalClusterStatus,
    Operation,
    OperationKind,
    OperationStatus,
    PhysicalCluster,
    PhysicalClusterKind,
    Satellite,
    TenantPrincipal,
)
from streamplane.mothership.store.secretbox import SecretBox
from streamplane.mothership.store.store import Repositories, Store

__all__ = [
    "AlreadyExistsError",
    "ApiKey",
    "ClaimOutcome",
    "ClusterType",
    "ConflictError",
    "IdempotencyClaim",
    "IdempotencyKeyReusedError",
    "IdempotencyRecord",
    "IssuedApiKey",
    "LogicalCluster",
    "LogicalClusterStatus",
    "NotFoundError",
    "Operation",
    "OperationKind",
    "OperationStatus",
    "PhysicalCluster",
    "PhysicalClusterKind",
    "Repositories",
    "Satellite",
    "SecretBox",
    "SecretDecryptionError",
    "Store",
    "StoreError",
    "TenantPrincipal",
    "request_fingerprint",
]
