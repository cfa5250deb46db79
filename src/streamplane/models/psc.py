"""The physical cluster spec (PSC): the declarative desired state of one Kafka cluster."""

from __future__ import annotations

import base64
import ipaddress
import re
import uuid
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)

from streamplane.settings import BROKER_HEAP_MB
from streamplane.tenancy import DEFAULT_CELL
from streamplane.versions import DEFAULT_KAFKA_VERSION, KAFKA_RELEASES, supported_versions

#: node ids of dedicated controllers start here, so broker ids must stay below it
CONTROLLER_ID_BASE = 9000
#: configs the satellite owns; a PSC may not set them in ``broker_configs``
MANAGED_CONFIGS = frozenset({
    "node.id", "broker.id", "process.roles", "listeners", "advertised.listeners",
    "listener.security.protocol.map", "controller.listener.names", "controller.quorum.voters",
    "controller.quorum.bootstrap.servers", "inter.broker.listener.name", "log.dirs", "log.dir",
    "broker.rack", "super.users", "authorizer.class.name", "sasl.enabled.mechanisms",
    "sasl.mechanism.inter.broker.protocol", "sasl.mechanism.controller.protocol",
})
_REPLICATION_KEYS = (
    "default.replication.factor",
    "offsets.topic.replication.factor",
    "transaction.state.log.replication.factor",
)
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$|^[a-z]$")
_KAFKA_CLUSTER_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")
_PORT = Field(default=None, ge=1024, le=65535)


def reveal_for_wire(v: SecretStr, info: Any) -> str:
    """A secret in JSON: its value only when dumped with ``context={"reveal_secrets": True}``
    (``to_wire``, for the desired-state channel), masked otherwise."""
    ctx = info.context or {}
    return v.get_secret_value() if ctx.get("reveal_secrets") else str(v)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokerSpec(_Model):
    """One broker. Ports left empty are chosen by the satellite and reported in status."""

    id: int = Field(ge=0, lt=CONTROLLER_ID_BASE)
    zone: str = Field(default="zone-a", min_length=1, max_length=63)
    cell: str = Field(default=DEFAULT_CELL, min_length=1, max_length=63)
    satellite: str | None = Field(
        default=None, description="the satellite (host) that runs it; empty: the PSC's satellite")
    host: str | None = Field(
        default=None, description="the address its listeners bind and advertise (its "
                                  "satellite's); empty: the PSC's host")
    port: int | None = _PORT
    internal_port: int | None = _PORT
    controller_port: int | None = _PORT
    metrics_port: int | None = _PORT

    @field_validator("host")
    @classmethod
    def _host(cls, v: str | None) -> str | None:
        return None if v is None else check_address(v)


class ControllerQuorum(_Model):
    """KRaft controllers: ``combined`` runs them inside the first brokers, ``dedicated``
    as separate processes (node ids from 9000)."""

    mode: Literal["combined", "dedicated"] = "combined"
    count: int = Field(default=1, ge=1, le=7)

    @field_validator("count")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(f"controller count must be odd so a majority exists, got {v}")
        return v


class JvmSpec(_Model):
    heap_mb: int = Field(default=BROKER_HEAP_MB, ge=128, le=65536)
    extra_options: tuple[str, ...] = ()


class SuperUser(_Model):
    """The control plane's own principal: PLAIN on the internal listeners, SCRAM outside."""

    name: str = Field(default="streamplane-admin", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    password: SecretStr

    @field_validator("password")
    @classmethod
    def _long_enough(cls, v: SecretStr) -> SecretStr:
        if len(v.get_secret_value()) < 12:
            raise ValueError("the super-user password must be at least 12 characters")
        return v

    @field_serializer("password", when_used="json")
    def _reveal_for_wire(self, v: SecretStr, info: Any) -> str:
        return reveal_for_wire(v, info)


class ClusterTls(_Model):
    """The cluster's own CA: its nodes' controller and replication listeners use TLS with
    certificates each satellite issues from it (``credentials/cluster_ca.py``)."""

    ca_cert: str = Field(min_length=1, description="PEM")
    ca_key: SecretStr = Field(description="PEM (PKCS#8)")

    @field_validator("ca_cert")
    @classmethod
    def _pem(cls, v: str) -> str:
        if "-----BEGIN CERTIFICATE-----" not in v:
            raise ValueError("tls.ca_cert must be a PEM certificate")
        return v

    @field_serializer("ca_key", when_used="json")
    def _reveal_for_wire(self, v: SecretStr, info: Any) -> str:
        return reveal_for_wire(v, info)


class PhysicalClusterSpec(_Model):
    """Desired state of one physical (real Kafka) cluster."""

    id: str = Field(description="stable name of the physical cluster, e.g. 'system'")
    generation: int = Field(default=1, ge=1)
    kafka_version: str = DEFAULT_KAFKA_VERSION
    kafka_cluster_id: str | None = Field(
        default=None, description="Kafka's own cluster id (22 base64url chars); generated if empty"
    )
    satellite: str | None = Field(
        default=None, description="the satellite that runs the nodes that name none (the "
        "dedicated controllers among them) and does the cluster-wide work: creating the "
        "super-user, unregistering removed brokers")
    host: str = Field(default="127.0.0.1",
                      description="the address of the nodes that name none")
    controllers: ControllerQuorum = ControllerQuorum()
    brokers: tuple[BrokerSpec, ...]
    broker_configs: dict[str, str] = Field(default_factory=dict)
    jvm: JvmSpec = JvmSpec()
    super_user: SuperUser
    #: TLS between the cluster's hosts (controller and replication listeners); None keeps
    #: them plaintext SASL, for clusters on one host
    tls: ClusterTls | None = None
    #: shared clusters: tenant (logical cluster id) -> the cell (``BrokerSpec.cell``) its
    #: replicas live in; a tenant not listed lives in ``cell-0``. Not Kafka configuration:
    #: the mothership's balancer reads it, the satellite ignores it.
    tenant_cells: dict[str, str] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(
                f"cluster id {v!r} must be 1-63 lowercase letters, digits or '-', "
                "starting with a letter and not ending with '-'"
            )
        return v

    @field_validator("kafka_version")
    @classmethod
    def _version(cls, v: str) -> str:
        if v not in KAFKA_RELEASES:
            raise ValueError(
                f"Kafka version {v!r} is not supported; choose one of "
                f"{', '.join(supported_versions())}"
            )
        return v

    @field_validator("kafka_cluster_id")
    @classmethod
    def _kafka_cluster_id(cls, v: str | None) -> str | None:
        if v is not None and not _KAFKA_CLUSTER_ID.match(v):
            raise ValueError("kafka_cluster_id must be 22 base64url characters (a Kafka UUID)")
        return v

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        return check_address(v)

    @field_validator("brokers")
    @classmethod
    def _brokers(cls, v: tuple[BrokerSpec, ...]) -> tuple[BrokerSpec, ...]:
        if not v:
            raise ValueError("a cluster needs at least one broker")
        ids = [b.id for b in v]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"broker ids must be unique; repeated: {dupes}")
        return v

    @field_validator("broker_configs")
    @classmethod
    def _configs(cls, v: dict[str, str]) -> dict[str, str]:
        managed = sorted(k for k in v if k in MANAGED_CONFIGS or k.startswith("listener.name."))
        if managed:
            raise ValueError(
                f"broker_configs may not set {', '.join(managed)}: the satellite manages them"
            )
        return {k: str(val) for k, val in v.items()}

    @model_validator(mode="after")
    def _consistent(self) -> PhysicalClusterSpec:
        n = len(self.brokers)
        if self.controllers.mode == "combined" and self.controllers.count > n:
            raise ValueError(
                f"{self.controllers.count} combined controllers need at least as many brokers, "
                f"but the cluster has {n}"
            )
        for key in _REPLICATION_KEYS:
            if key in self.broker_configs:
                rf = _positive_int(key, self.broker_configs[key])
                if rf > n:
                    raise ValueError(f"{key}={rf} is more than the {n} broker(s) in the cluster")
        if "min.insync.replicas" in self.broker_configs:
            isr = _positive_int("min.insync.replicas", self.broker_configs["min.insync.replicas"])
            rf = int(self.broker_configs.get("default.replication.factor", min(3, n)))
            if isr > rf:
                raise ValueError(
                    f"min.insync.replicas={isr} is more than the replication factor {rf}: "
                    "no produce with acks=all could ever succeed"
                )
        self._check_placement()
        self._check_ports()
        return self

    def _check_placement(self) -> None:
        named = [b for b in self.brokers if b.satellite is not None]
        if named and self.satellite is None:
            raise ValueError("a cluster whose brokers name their satellites needs a satellite "
                             "of its own, to do the cluster-wide work")
        elsewhere = [b for b in named if b.satellite != self.satellite]
        if elsewhere and self.kafka_cluster_id is None:
            raise ValueError("a cluster over several satellites needs its kafka_cluster_id in "
                             "the spec, so that every satellite formats the same cluster")
        if elsewhere and self.controllers.mode == "dedicated":
            raise ValueError("a cluster over several satellites runs its controllers inside its "
                             "brokers (combined), one per zone; dedicated controllers are not "
                             "supported there yet")
        for b in elsewhere:
            if b.host is None:
                raise ValueError(f"broker {b.id} runs on satellite {b.satellite}, so it needs "
                                 "that satellite's address as its host")

    def _check_ports(self) -> None:
        seen: dict[tuple[str, int], str] = {}
        for b in self.brokers:
            for field in ("port", "internal_port", "controller_port", "metrics_port"):
                port = getattr(b, field)
                if port is None:
                    continue
                where = f"broker {b.id} {field}"
                key = (self.node_host(b.id), port)
                if key in seen:
                    raise ValueError(f"port {port} is used twice on {key[0]}: {seen[key]} and {where}")
                seen[key] = where

    # ---- derived views -------------------------------------------------------------

    @property
    def broker_ids(self) -> list[int]:
        return sorted(b.id for b in self.brokers)

    def controller_ids(self) -> list[int]:
        if self.controllers.mode == "combined":
            return self.broker_ids[: self.controllers.count]
        return [CONTROLLER_ID_BASE + i for i in range(self.controllers.count)]

    def broker(self, node_id: int) -> BrokerSpec | None:
        return next((b for b in self.brokers if b.id == node_id), None)

    def node_satellite(self, node_id: int) -> str | None:
        """The satellite that runs node ``node_id`` (dedicated controllers run on the PSC's)."""
        b = self.broker(node_id)
        return (b.satellite if b else None) or self.satellite

    def node_host(self, node_id: int) -> str:
        """The address node ``node_id`` binds and advertises."""
        b = self.broker(node_id)
        return (b.host if b else None) or self.host

    def satellites(self) -> list[str]:
        """Every satellite that runs a node of this cluster, or does its cluster-wide work."""
        names = {b.satellite for b in self.brokers if b.satellite} | {self.satellite}
        return sorted(n for n in names if n)

    def nodes_on(self, satellite: str | None) -> list[int]:
        """The node ids (brokers and controllers) that ``satellite`` runs."""
        ids = set(self.broker_ids) | set(self.controller_ids())
        return sorted(i for i in ids if self.node_satellite(i) == satellite)

    @property
    def default_replication_factor(self) -> int:
        return int(self.broker_configs.get("default.replication.factor", min(3, len(self.brokers))))

    def to_wire(self) -> dict[str, Any]:
        """JSON-ready dict *including* secrets, for the desired-state channel only."""
        return self.model_dump(mode="json", context={"reveal_secrets": True}, exclude_none=True)


def new_kafka_cluster_id() -> str:
    """A fresh Kafka cluster id (a UUID in base64url, as Kafka's storage tool makes)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def check_address(v: str) -> str:
    try:
        ipaddress.ip_address(v)
    except ValueError:
        raise ValueError(f"host {v!r} must be an IP address, e.g. 127.0.0.1") from None
    return v


def _positive_int(key: str, value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"{key} must be a whole number, got {value!r}") from None
    if n < 1:
        raise ValueError(f"{key} must be at least 1, got {n}")
    return n
