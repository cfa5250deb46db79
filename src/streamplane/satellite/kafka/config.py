"""Render a node's ``server.properties`` and JMX exporter config from the PSC.

Listeners: CONTROLLER (KRaft quorum) and INTERNAL (replication, the satellite's own admin
connection) authenticate with SASL/PLAIN against the super-user set in the file, so they
work before the cluster has any metadata; EXTERNAL is what clients use, SASL/SCRAM-SHA-512
with credentials kept in the cluster's metadata.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from streamplane.models.psc import PhysicalClusterSpec

PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"
SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"


@dataclass(frozen=True)
class NodePorts:
    controller: int | None  # set on nodes that run a controller
    internal: int | None  # set on nodes that run a broker
    external: int | None
    metrics: int

    def to_json(self) -> dict[str, int | None]:
        return {"controller": self.controller, "internal": self.internal,
                "external": self.external, "metrics": self.metrics}


@dataclass(frozen=True)
class NodePlan:
    """One Kafka process: its id, roles and ports."""

    node_id: int
    roles: tuple[str, ...]
    ports: NodePorts
    zone: str | None
    cell: str | None
    #: the address its listeners bind and advertise (its satellite's)
    host: str = "127.0.0.1"

    @property
    def is_broker(self) -> bool:
        return "broker" in self.roles

    @property
    def is_controller(self) -> bool:
        return "controller" in self.roles


def _jaas_plain(user: str, password: str) -> str:
    return (f'{PLAIN_MODULE} required username="{user}" password="{password}" '
            f'user_{user}="{password}";')


def default_broker_configs(psc: PhysicalClusterSpec) -> dict[str, str]:
    """Sensible defaults for a managed cluster; the PSC's ``broker_configs`` override them."""
    n = len(psc.brokers)
    rf = min(3, n)
    return {
        "num.partitions": "1",
        "default.replication.factor": str(rf),
        "min.insync.replicas": str(min(2, rf)),
        "offsets.topic.replication.factor": str(rf),
        "transaction.state.log.replication.factor": str(rf),
        "transaction.state.log.min.isr": str(min(2, rf)),
        "auto.create.topics.enable": "false",
        "unclean.leader.election.enable": "false",
        "allow.everyone.if.no.acl.found": "false",
        "delete.topic.enable": "true",
    }


def render_server_properties(
    psc: PhysicalClusterSpec,
    node: NodePlan,
    voters: dict[int, tuple[str, int]],
    log_dir: str,
    tls_dir: str | None = None,
) -> str:
    """``voters`` maps each controller node id to its controller address and port; with
    ``tls_dir`` (``psc.tls``) the controller and replication listeners use TLS with the
    PEM files there (see ``tls_configs``)."""
    host = node.host
    su = psc.super_user.name
    pw = psc.super_user.password.get_secret_value()
    props: dict[str, str] = {
        "process.roles": ",".join(node.roles),
        "node.id": str(node.node_id),
        "controller.quorum.voters": ",".join(f"{i}@{h}:{p}" for i, (h, p) in sorted(voters.items())),
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map":
            "CONTROLLER:SASL_PLAINTEXT,INTERNAL:SASL_PLAINTEXT,EXTERNAL:SASL_PLAINTEXT",
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": _jaas_plain(su, pw),
        "log.dirs": log_dir,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{su}",
    }
    listeners = []
    if node.is_controller:
        listeners.append(f"CONTROLLER://{host}:{node.ports.controller}")
    if node.is_broker:
        listeners += [f"INTERNAL://{host}:{node.ports.internal}",
                      f"EXTERNAL://{host}:{node.ports.external}"]
        props.update({
            "advertised.listeners":
                f"INTERNAL://{host}:{node.ports.internal},EXTERNAL://{host}:{node.ports.external}",
            "inter.broker.listener.name": "INTERNAL",
            "sasl.mechanism.inter.broker.protocol": "PLAIN",
            "listener.name.internal.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.internal.plain.sasl.jaas.config": _jaas_plain(su, pw),
            "listener.name.external.sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "listener.name.external.scram-sha-512.sasl.jaas.config": f"{SCRAM_MODULE} required;",
        })
        if node.zone:
            props["broker.rack"] = node.zone
    if tls_dir is not None:
        props.update(tls_configs(tls_dir))
    props["listeners"] = ",".join(listeners)
    merged = {**default_broker_configs(psc), **psc.broker_configs, **props}
    lines = ["# Rendered by the Streamplane satellite; edits are overwritten."]
    lines += [f"{k}={_escape(v)}" for k, v in sorted(merged.items())]
    return "\n".join(lines) + "\n"


#: files a node's TLS directory holds: the key and chain Kafka serves, and the cluster CA
KEYSTORE_FILE = "keystore.pem"
CA_FILE = "ca.pem"


def tls_configs(tls_dir: str) -> dict[str, str]:
    """CONTROLLER and INTERNAL over SASL_SSL, trusting only the cluster's CA; the plain
    ``ssl.*`` settings serve the client side (a broker reaching the controllers, a replica
    fetching from its leader). Hostname verification stays on: certificates name the IP."""
    keystore, ca = f"{tls_dir}/{KEYSTORE_FILE}", f"{tls_dir}/{CA_FILE}"
    out = {"listener.security.protocol.map":
           "CONTROLLER:SASL_SSL,INTERNAL:SASL_SSL,EXTERNAL:SASL_PLAINTEXT"}
    for prefix in ("", "listener.name.controller.", "listener.name.internal."):
        out.update({f"{prefix}ssl.keystore.type": "PEM", f"{prefix}ssl.keystore.location": keystore,
                    f"{prefix}ssl.truststore.type": "PEM", f"{prefix}ssl.truststore.location": ca})
    return out


def digest(text: str) -> str:
    """A short fingerprint of a rendered config (to notice that a node must restart)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _escape(value: str) -> str:
    # java.util.Properties treats a backslash as an escape character
    return value.replace("\\", "\\\\")


JMX_EXPORTER_CONFIG = """\
# Rendered by the Streamplane satellite.
lowercaseOutputName: true
lowercaseOutputLabelNames: true
includeObjectNames:
  - "kafka.server:*"
  - "kafka.controller:*"
  - "kafka.network:type=RequestMetrics,name=TotalTimeMs,*"
  - "kafka.network:type=SocketServer,*"
  - "kafka.log:type=Log,name=Size,*"
  - "java.lang:type=Memory"
  - "java.lang:type=GarbageCollector,*"
"""
