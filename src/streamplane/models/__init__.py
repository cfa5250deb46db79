"""Pydantic models shared by the satellite, the mothership, the CLI and the store."""

from streamplane.models.psc import (
    BrokerSpec,
    ControllerQuorum,
    JvmSpec,
    PhysicalClusterSpec,
    SuperUser,
)
from streamplane.models.status import ClusterState, ClusterStatus, NodeState, NodeStatus

__all__ = [
    "BrokerSpec",
    "ClusterState",
    "ClusterStatus",
    "ControllerQuorum",
    "JvmSpec",
    "NodeState",
    "NodeStatus",
    "PhysicalClusterSpec",
    "SuperUser",
]
