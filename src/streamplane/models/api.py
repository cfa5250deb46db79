"""Request and response bodies of the REST API (``/v1``): the wire format the mothership
serves and the CLI reads. Plain Pydantic models; the mothership builds them from its store
records (``mothership/api/views.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from streamplane.capacity import MAX_CKU, MIN_CKU
from streamplane.versions import DEFAULT_KAFKA_VERSION

CLUSTER_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
TOPIC_NAME = r"^[A-Za-z0-9._-]{1,200}$"


#: Confluent Cloud's SINGLE_ZONE / MULTI_ZONE: how many zones a cluster's brokers span
Availability = Literal["single-zone", "multi-zone"]
Zones = Literal[1, 3]
AVAILABILITY_ZONES: dict[Availability, Zones] = {"single-zone": 1, "multi-zone": 3}
MULTI_ZONE = AVAILABILITY_ZONES["multi-zone"]


def availability_of(zones: int) -> Availability:
    return "multi-zone" if zones >= MULTI_ZONE else "single-zone"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClusterCreate(_In):
    name: str = Field(pattern=CLUSTER_NAME, description="unique among your live clusters")
    type: Literal["basic", "standard", "dedicated"] = "dedicated"
    cku: int | None = Field(default=None, ge=MIN_CKU, le=MAX_CKU, description="dedicated only")
    availability: Availability | None = Field(
        default=None, description="multi-zone: brokers in 3 zones (refused unless connected satellites "
                                  "are in 3 zones); single-zone: in one. Sets zones")
    zones: Zones = Field(default=1, description="the older spelling of availability: 3 is "
                                                "multi-zone, 1 single-zone")
    kafka_version: str = DEFAULT_KAFKA_VERSION

    @model_validator(mode="after")
    def _zones_of_availability(self) -> ClusterCreate:
        if self.availability is None:
            return self
        zones = AVAILABILITY_ZONES[self.availability]
        if "zones" in self.model_fields_set and self.zones != zones:
            raise ValueError(f"availability {self.availability} means zones {zones}, but zones is "
                             f"{self.zones}; send only one of them")
        self.zones = zones
        return self


class ClusterUpdate(_In):
    name: str | None = Field(default=None, pattern=CLUSTER_NAME)
    cku: int | None = Field(default=None, ge=MIN_CKU, le=MAX_CKU,
                            description="dedicated clusters: scale to this many CKUs, online")
    generation: int | None = Field(default=None, ge=1, description="alternative to If-Match")


class ClusterOut(BaseModel):
    id: str
    name: str
    type: str
    cku: int | None
    zones: int
    kafka_version: str
    status: str
    status_reason: str
    bootstrap: str | None
    security_protocol: str = Field(
        default="SASL_PLAINTEXT",
        description="what clients set as security.protocol: SASL_SSL when the gateway "
                    "in front of a basic/standard cluster serves TLS")
    generation: int
    created_at: datetime
    updated_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def availability(self) -> Availability:
        """What ``zones`` means: multi-zone from three zones up."""
        return availability_of(self.zones)


class OperationOut(BaseModel):
    id: str
    kind: str
    target_id: str
    status: str
    progress: float
    error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class ClusterAccepted(BaseModel):
    operation: OperationOut
    cluster: ClusterOut


class ApiKeyCreate(_In):
    description: str = Field(default="", max_length=200)


class ApiKeyOut(BaseModel):
    key: str
    cluster_id: str
    description: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyIssued(ApiKeyOut):
    secret: str = Field(description="shown once; only its hash is stored")


class ApiKeyAccepted(BaseModel):
    operation: OperationOut
    api_key: ApiKeyIssued


class TopicCreate(_In):
    name: str = Field(pattern=TOPIC_NAME)
    partitions: int = Field(default=3, ge=1, le=10000)
    replication_factor: int | None = Field(default=None, ge=1, le=10)
    configs: dict[str, str] = Field(default_factory=dict)


class TopicUpdate(_In):
    configs: dict[str, str | None] = Field(
        default_factory=dict, description="null removes an override")
    partitions: int | None = Field(default=None, ge=1, le=10000, description="new total")


class TopicOut(BaseModel):
    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str] = Field(default_factory=dict)
    partition_details: list[dict[str, Any]] = Field(default_factory=list)


class TopicAccepted(BaseModel):
    operation: OperationOut
    topic: TopicOut | None


class Accepted(BaseModel):
    operation: OperationOut


class SatelliteOut(BaseModel):
    name: str
    zone: str
    capacity: dict[str, Any]
    host: str | None = Field(default=None, description="the address its Kafka nodes bind and advertise")
    state: Literal["connected", "lost", "unknown"] = Field(
        default="unknown", description="lost: not heard from within the lost timeout; unknown: "
        "the mothership has not read the satellites' announcements")
    last_seen_at: float | None = Field(default=None, description="its last announcement (Unix time)")


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody


class RebalanceRequest(_In):
    dry_run: bool = Field(default=False, description="only compute and show the plan")


class ClusterLoadOut(BaseModel):
    cluster_id: str
    physical_cluster_id: str
    brokers: list[dict[str, Any]]
    partitions: int
    #: goal name -> how far the cluster is from it (0 = met)
    imbalance: dict[str, float]
    notes: list[str]
    balance: dict[str, Any] | None


class QuarantineRequest(_In):
    release: bool = Field(default=False, description="move the tenant back to the shared cell")


class GatewayOut(BaseModel):
    physical_cluster: str
    bootstrap: str | None
    security_protocol: str | None
    #: serial (hex), subject, issuer, not_after, loads; None without TLS
    certificate: dict[str, Any] | None = None


class GatewayReloadOut(BaseModel):
    #: the gateways asked to load their certificate files again
    asked: list[dict[str, Any]]
