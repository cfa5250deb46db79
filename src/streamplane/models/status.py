"""What a satellite reports about the clusters it runs."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class NodeState(StrEnum):
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    RESTARTING = "RESTARTING"  # died; waiting out its backoff before the next start
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"


class ClusterState(StrEnum):
    PENDING = "PENDING"  # accepted, nothing started yet
    STARTING = "STARTING"  # processes starting, not yet healthy for the first time
    HEALTHY = "HEALTHY"
    DEGRADED = "DEGRADED"  # was healthy; now a check fails
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    FAILED = "FAILED"  # cannot proceed without a change to the spec; see last_error
    DELETED = "DELETED"


class NodeStatus(BaseModel):
    id: int
    roles: list[str]
    state: NodeState
    host: str
    satellite: str | None = Field(default=None, description="the satellite (host) that runs it")
    port: int | None = Field(default=None, description="client (external) port; None on controllers")
    internal_port: int | None = None
    controller_port: int | None = None
    metrics_port: int
    pid: int | None = None
    zone: str | None = None
    cell: str | None = None
    restarts: int = 0
    last_exit_code: int | None = None
    registered: bool = False


class ClusterStatus(BaseModel):
    id: str
    satellite: str
    status: ClusterState
    generation: int
    observed_generation: int | None = None
    kafka_version: str
    kafka_cluster_id: str | None = None
    bootstrap: str | None = None
    brokers: list[NodeStatus] = Field(default_factory=list)
    controllers: list[NodeStatus] = Field(default_factory=list, description="dedicated only")
    quorum_leader: int | None = None
    under_replicated_partitions: int | None = None
    offline_partitions: int | None = None
    message: str = ""
    last_error: str | None = None
    updated_at: float = 0.0
