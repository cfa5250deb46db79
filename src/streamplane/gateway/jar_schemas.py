"""Message classes for the Kafka APIs kafka-python has no schema for, from Kafka's own jar.

kafka-python builds its request and response classes from Apache Kafka's JSON message
definitions, which it ships for the APIs it implements. The KIP-848 consumer group APIs
(ConsumerGroupHeartbeat, ConsumerGroupDescribe) are not among them, but the same JSON files
are inside every ``kafka-clients`` jar (``common/message/*.json``), and Streamplane already
keeps Kafka's jars in its cache. This module points kafka-python's schema loader at that
jar through an importlib resource reader, so the gateway reads and rewrites those APIs with
Kafka's own definitions, and nothing is copied.

Without a cached Kafka distribution the APIs are simply not there: the gateway does not
advertise them and clients fall back to the classic group protocol.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import logging
import re
import sys
import zipfile
from collections.abc import Iterator
from importlib.resources.abc import Traversable, TraversableResources
from pathlib import Path
from types import ModuleType
from typing import Any

from kafka.protocol.api_message import ApiMessage

from streamplane.paths import cache_root

log = logging.getLogger(__name__)

#: the APIs taken from the jar: (request class name, response class name)
JAR_APIS = (
    ("ConsumerGroupHeartbeatRequest", "ConsumerGroupHeartbeatResponse"),
    ("ConsumerGroupDescribeRequest", "ConsumerGroupDescribeResponse"),
)
#: where the JSON files are inside kafka-clients-<version>.jar
MESSAGE_DIR = "common/message/"
#: the package name kafka-python's loader is given (a resource-only package)
PACKAGE = "streamplane.gateway._kafka_message_json"


def _version_key(path: Path) -> tuple[int, ...]:
    found = re.search(r"kafka-clients-(\d+)\.(\d+)\.(\d+)\.jar$", path.name)
    return tuple(int(n) for n in found.groups()) if found else ()


def find_clients_jar(root: Path | None = None) -> Path | None:
    """The newest ``kafka-clients`` jar among the cached Kafka distributions."""
    base = root if root is not None else cache_root() / "kafka"
    jars = [j for j in base.glob("*/libs/kafka-clients-*.jar") if _version_key(j)]
    return max(jars, key=_version_key) if jars else None


class _JarMessages(TraversableResources):
    def __init__(self, root: Traversable) -> None:
        self._root = root

    def files(self) -> Traversable:
        return self._root


class _JarLoader(importlib.abc.Loader):
    """Serves the jar's message directory as the resources of a package with no code."""

    def __init__(self, root: Traversable) -> None:
        self._root = root

    def get_resource_reader(self, name: str) -> TraversableResources:
        return _JarMessages(self._root)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        return None


def _resource_package(jar: Path) -> str:
    """Register (once) the package whose resources are the jar's message JSON files."""
    if PACKAGE not in sys.modules:
        loader = _JarLoader(zipfile.Path(jar, MESSAGE_DIR))
        spec = importlib.machinery.ModuleSpec(PACKAGE, loader, is_package=True)
        sys.modules[PACKAGE] = importlib.util.module_from_spec(spec)
    return PACKAGE


def _message_class(name: str, package: str) -> Any:
    metaclass = type(ApiMessage)
    return metaclass(name, (ApiMessage,), {"__slots__": (), "__module__": __name__},
                     load_json=package)


def message_classes(jar: Path | None = None) -> Iterator[Any]:
    """Request and response classes for ``JAR_APIS``; none if no jar has them."""
    jar = jar if jar is not None else find_clients_jar()
    if jar is None:
        log.info("no cached Kafka distribution: the KIP-848 consumer group APIs are not "
                 "available through the gateway")
        return
    try:
        package = _resource_package(jar)
        classes = [_message_class(n, package) for pair in JAR_APIS for n in pair]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        log.warning("cannot read Kafka's message schemas from %s (%s): the KIP-848 consumer "
                    "group APIs are not available through the gateway", jar, exc)
        return
    yield from classes
