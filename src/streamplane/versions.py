"""The Kafka versions Streamplane can run, and what each needs from Maven Central.

This is the one place that names Kafka and helper artifact versions. The default is the
newest 4.x line whose broker *and* tools artifacts resolve completely from Maven Central
(4.4.0 is listed there, but its ``kafka-tools`` artifact is not published, so 4.3.1 is
the newest complete release). The 3.9 line is kept for rolling-upgrade work.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KafkaRelease:
    """Maven coordinates of one Kafka release plus the logging backend it expects."""

    version: str
    scala: str
    #: extra runtime artifacts (group:artifact:version) that bind Kafka's slf4j logging
    logging_artifacts: tuple[str, ...]
    #: "log4j2" (Kafka 4.x) or "log4j" (reload4j, Kafka 3.x)
    logging_flavour: str

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


JMX_EXPORTER_VERSION = "1.0.1"

KAFKA_RELEASES: dict[str, KafkaRelease] = {
    "4.3.1": KafkaRelease(
        version="4.3.1",
        scala="2.13",
        logging_artifacts=("org.apache.logging.log4j:log4j-slf4j-impl:2.25.4",),
        logging_flavour="log4j2",
    ),
    "3.9.2": KafkaRelease(
        version="3.9.2",
        scala="2.13",
        logging_artifacts=("org.slf4j:slf4j-reload4j:1.7.36",),
        logging_flavour="log4j",
    ),
}

DEFAULT_KAFKA_VERSION = "4.3.1"
UPGRADE_FROM_KAFKA_VERSION = "3.9.2"


def supported_versions() -> list[str]:
    return sorted(KAFKA_RELEASES, key=lambda v: tuple(int(p) for p in v.split(".")))


def release(version: str) -> KafkaRelease:
    try:
        return KAFKA_RELEASES[version]
    except KeyError:
        raise ValueError(
            f"Kafka version {version!r} is not supported; choose one of "
            f"{', '.join(supported_versions())}"
        ) from None
