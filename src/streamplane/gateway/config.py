"""Gateway settings: every number the gateway runs by, in one place."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from streamplane.credentials.tls import TlsSettings
from streamplane.gateway.sasl import SUPPORTED_MECHANISMS
from streamplane.gateway.upstream import parse_address


class GatewayConfig(BaseModel):
    """How one gateway, in front of one shared physical cluster, listens and behaves."""

    model_config = ConfigDict(frozen=True)

    #: the physical cluster's client listener (SASL/SCRAM), ``host:port`` each
    upstream_bootstrap: tuple[str, ...] = Field(min_length=1)
    #: where the listeners bind; loopback unless told otherwise
    listen_host: str = "127.0.0.1"
    #: the host clients are told to connect to; ``listen_host`` when unset
    advertised_host: str | None = None
    #: the bootstrap listener's port; 0 picks a free one (see ``Gateway.bootstrap``)
    bootstrap_port: int = Field(default=0, ge=0, le=65535)
    #: fixed listener ports per broker node id; others use ``broker_port_base + node id``,
    #: or a free port when that is unset
    broker_ports: dict[int, int] = Field(default_factory=dict)
    broker_port_base: int | None = Field(default=None, ge=1, le=65535)
    #: TLS on every client listener (clients use SASL_SSL); plain TCP when unset
    tls: TlsSettings | None = None
    #: SASL mechanisms offered to clients
    mechanisms: tuple[str, ...] = SUPPORTED_MECHANISMS
    #: a client must have logged in this long after connecting
    auth_timeout_s: float = Field(default=10.0, gt=0)
    #: connecting and logging in to a broker
    upstream_timeout_s: float = Field(default=10.0, gt=0)
    #: how often keys in use are re-checked with the verifier (a revocation's worst delay)
    recheck_interval_s: float = Field(default=2.0, gt=0)
    #: how long a verified secret is trusted before it is checked again (revocations are
    #: caught by the re-check long before that)
    cache_ttl_s: float = Field(default=300.0, gt=0)
    #: a broker missing from Metadata keeps its listener this long (restarts, elections)
    broker_removal_grace_s: float = Field(default=30.0, ge=0)
    #: requests one client connection may have in flight before the gateway stops reading
    max_in_flight: int = Field(default=64, ge=1)
    #: the largest request a client may send, in bytes (Kafka's socket.request.max.bytes)
    max_request_bytes: int = Field(default=100 * 1024 * 1024, ge=1024)
    #: the shared cluster's num.partitions: what a CreateTopics asking for the default
    #: counts against a tenant's partition limit
    default_partitions: int = Field(default=1, ge=1)
    #: the largest SASL message before login (Kafka's sasl.server.max.receive.size)
    max_sasl_bytes: int = Field(default=524288, ge=1024)

    @field_validator("upstream_bootstrap")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            parse_address(item)
        return value

    @field_validator("mechanisms")
    @classmethod
    def _mechanisms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [m for m in value if m not in SUPPORTED_MECHANISMS]
        if unknown or not value:
            raise ValueError(f"mechanisms must be some of {', '.join(SUPPORTED_MECHANISMS)}, "
                             f"not {', '.join(unknown) or 'none'}")
        return value

    @property
    def advertised(self) -> str:
        return self.advertised_host or self.listen_host
