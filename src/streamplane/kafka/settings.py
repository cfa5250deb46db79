"""How Streamplane's own code reaches a Kafka cluster: listener, SASL login, client logging.

Every admin client in Streamplane (the satellite's health probe, the mothership's admin
library, the balancer's monitor and executor, the control channel) is configured here, so
timeouts, the SASL settings and where librdkafka's chatter goes are decided once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

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

    def librdkafka(self, logger: logging.Logger = RDKAFKA_LOG) -> dict[str, Any]:
        """The settings for a confluent-kafka (librdkafka) client."""
        return {**sasl_config(self.bootstrap, self.mechanism, self.username, self.password,
                              self.security_protocol), "logger": logger}

    def kafka_python(self) -> dict[str, Any]:
        """The settings for a kafka-python client."""
        return {"bootstrap_servers": self.bootstrap.split(","), "security_protocol": self.security_protocol,
                "sasl_mechanism": self.mechanism, "sasl_plain_username": self.username,
                "sasl_plain_password": self.password}


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
