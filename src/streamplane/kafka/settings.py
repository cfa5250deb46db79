"""How Streamplane's own code reaches a Kafka cluster: listener, SASL login, client logging.

Every admin client in Streamplane (the satellite's health probe, the mothership's admin
library, the balancer's monitor and executor, the control channel) is configured here, so
timeouts, the SASL settings and where librdkafka's chatter goes are decided once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from confluent_kafka.admin import AdminClient
from kafka import KafkaAdminClient

#: librdkafka reports every refused connection; while brokers start that is expected noise,
#: so its lines go to a logger of their own, quiet unless the process runs verbose
RDKAFKA_LOG = logging.getLogger("streamplane.rdkafka")
#: the socket timeout of Streamplane's own admin clients
ADMIN_TIMEOUT_S = 5.0
SCRAM_MECHANISM = "SCRAM-SHA-512"


@dataclass(frozen=True)
class ClientSettings:
    """How to reach a cluster's listener; the password never appears in ``repr``."""

    bootstrap: str
    username: str
    password: str
    mechanism: str = SCRAM_MECHANISM
    security_protocol: str = "SASL_PLAINTEXT"

    def __repr__(self) -> str:
        return f"ClientSettings(bootstrap={self.bootstrap!r}, username={self.username!r})"


def admin_client(settings: ClientSettings, timeout_s: float, logger: logging.Logger = RDKAFKA_LOG,
                 **extra: Any) -> Any:
    """A confluent-kafka (librdkafka) admin client: its socket and connection setup give up
    after ``timeout_s``; its chatter goes to ``logger``."""
    timeout_ms = int(timeout_s * 1000)
    return AdminClient({
        **sasl_config(settings.bootstrap, settings.mechanism, settings.username, settings.password,
                      settings.security_protocol),
        "socket.timeout.ms": timeout_ms, "socket.connection.setup.timeout.ms": timeout_ms,
        "logger": logger, **extra})


def kafka_python_admin(settings: ClientSettings, timeout_s: float, client_id: str,
                       bootstrap_timeout: bool = True) -> Any:
    """A kafka-python admin client, for what librdkafka has no API for (KIP-455
    reassignments, client quotas, log dirs); its requests give up after ``timeout_s``."""
    timeout_ms = int(timeout_s * 1000)
    return KafkaAdminClient(
        bootstrap_servers=settings.bootstrap.split(","), security_protocol=settings.security_protocol,
        sasl_mechanism=settings.mechanism, sasl_plain_username=settings.username,
        sasl_plain_password=settings.password, request_timeout_ms=timeout_ms, client_id=client_id,
        **({"bootstrap_timeout_ms": timeout_ms} if bootstrap_timeout else {}))


def sasl_config(bootstrap: str, mechanism: str, user: str, password: str,
                security_protocol: str = "SASL_PLAINTEXT") -> dict[str, Any]:
    """librdkafka settings for a SASL login on ``bootstrap``."""
    return {
        "bootstrap.servers": bootstrap,
        "security.protocol": security_protocol,
        "sasl.mechanism": mechanism,
        "sasl.username": user,
        "sasl.password": password,
        "socket.timeout.ms": int(ADMIN_TIMEOUT_S * 1000),
        "logger": RDKAFKA_LOG,
    }
