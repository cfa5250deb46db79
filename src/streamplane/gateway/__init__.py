"""The Kafka-protocol gateway: API-key logins and tenant namespacing in front of a shared cluster."""

from streamplane.credentials.scram import ScramCredential
from streamplane.gateway.auth import (
    InMemoryKeyVerifier,
    KeyVerifier,
    ScramEntry,
    TenantIdentity,
    UpstreamCredentials,
)
from streamplane.gateway.config import GatewayConfig
from streamplane.gateway.gateway import Gateway

__all__ = [
    "Gateway",
    "GatewayConfig",
    "InMemoryKeyVerifier",
    "KeyVerifier",
    "ScramCredential",
    "ScramEntry",
    "TenantIdentity",
    "UpstreamCredentials",
]
