"""What the store hands out: immutable Pydantic records, detached from any session."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from streamplane.models import ClusterStatus, PhysicalClusterSpec


class ClusterType(StrEnum):
    BASIC = "basic"
    STANDARD = "standard"
    DEDICATED = "dedicated"


class LogicalClusterStatus(StrEnum):
    PROVISIONING = "PROVISIONING"
    RUNNING = "RUNNING"
    UPDATING = "UPDATING"
    DELETING = "DELETING"
    DELETED = "DELETED"
    FAILED = "FAILED"


class PhysicalClusterKind(StrEnum):
    DEDICATED = "dedicated"
    SHARED = "shared"


class OperationKind(StrEnum):
    """Known operation kinds; the store accepts any ``snake_case`` kind."""

    CREATE_CLUSTER = "create_cluster"
    UPDATE_CLUSTER = "update_cluster"
    DELETE_CLUSTER = "delete_cluster"
    CREATE_TOPIC = "create_topic"
    UPDATE_TOPIC = "update_topic"
    DELETE_TOPIC = "delete_topic"


class OperationStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    @property
    def finished(self) -> bool:
        return self in (OperationStatus.SUCCEEDED, OperationStatus.FAILED)


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


class LogicalCluster(_Record):
    id: str
    name: str
    type: ClusterType
    cku: int | None
    zones: int
    kafka_version: str
    status: LogicalClusterStatus
    status_reason: str
    physical_cluster_id: str | None
    bootstrap: str | None
    generation: int = Field(description="bumped on every spec change; the resource's ETag")
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


class PhysicalCluster(_Record):
    id: str
    satellite: str
    kind: PhysicalClusterKind
    spec: PhysicalClusterSpec = Field(description="decrypted; spec.generation == generation")
    generation: int
    observed_status: ClusterStatus | None
    observed_generation: int | None
    deleting: bool
    created_at: datetime
    updated_at: datetime


class Satellite(_Record):
    name: str
    zone: str
    capacity: dict[str, Any]
    status: dict[str, Any] | None
    last_seen_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ApiKey(_Record):
    """An API key as the API shows it. The secret is never part of it."""

    id: str = Field(description="the public key, e.g. AKXXXXXXXXXXXXXX")
    logical_cluster_id: str
    description: str
    role: str | None
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class IssuedApiKey(BaseModel):
    """Returned once, on creation: the only time the secret exists outside the caller."""

    model_config = ConfigDict(frozen=True)

    api_key: ApiKey
    secret: SecretStr


class TenantPrincipal(BaseModel):
    """The Kafka user of a basic/standard cluster on its shared physical cluster."""

    model_config = ConfigDict(frozen=True)

    logical_cluster_id: str
    username: str
    password: SecretStr
    created_at: datetime


class Operation(_Record):
    id: str
    kind: str
    target_id: str
    status: OperationStatus
    progress: float
    error: str | None
    request: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class IdempotencyRecord(_Record):
    scope: str
    key: str
    fingerprint: str
    status_code: int | None = Field(description="None while the first request is still running")
    response: Any
    operation_id: str | None
    created_at: datetime
    completed_at: datetime | None

    @property
    def completed(self) -> bool:
        return self.status_code is not None


class ClaimOutcome(StrEnum):
    CLAIMED = "CLAIMED"  # the caller owns the key now: do the work, then complete() it
    REPLAY = "REPLAY"  # done before with the same body: answer with record.status_code/response
    IN_PROGRESS = "IN_PROGRESS"  # another request with this key is still running


class IdempotencyClaim(BaseModel):
    model_config = ConfigDict(frozen=True)

    outcome: ClaimOutcome
    record: IdempotencyRecord
