"""Shared pytest configuration: honest ``kafka`` markers.

``pytest -m "not kafka"`` is the fast loop, so a test that starts Kafka must say so. Two
checks keep the marker honest: a test that uses one of the fixtures below (each starts
Kafka processes) is marked ``kafka`` at collection, and a test that is not marked yet
starts a Kafka process of its own fails, naming itself.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psutil
import pytest

#: fixtures (of the conftests below this one) that start real Kafka processes
KAFKA_FIXTURES = frozenset({
    "platform", "zone_b",                       # mothership: the whole platform
    "system_data_dir",                          # channel: a system cluster
    "cluster", "one_broker",                    # executor, gateway: a physical cluster
    "load_cluster",                             # balancer: a cluster under load
    "solo",                                     # kafka_admin: a one-node cluster
    "trio",                                     # satellite: a three-broker cluster
})
KAFKA_MAIN = "kafka.Kafka"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if KAFKA_FIXTURES & set(getattr(item, "fixturenames", ())) and item.get_closest_marker("kafka") is None:
            item.add_marker(pytest.mark.kafka)


def _kafka_processes(under: str) -> set[int]:
    """Kafka processes whose command line names a path under ``under``."""
    found = set()
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if KAFKA_MAIN in cmd and any(under in part for part in cmd):
            found.add(proc.info["pid"])
    return found


class _KafkaWatch:
    """Notes every Kafka process under a directory seen while a test runs (one look a
    second: a Kafka node lives far longer than that, even one the test stops again)."""

    INTERVAL_S = 1.0

    def __init__(self, under: str) -> None:
        self.under = under
        self.before = _kafka_processes(under)
        self.seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="kafka-marker-watch", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.INTERVAL_S):
            self.seen |= _kafka_processes(self.under) - self.before

    def stop(self) -> set[int]:
        self._stop.set()
        self._thread.join()
        return self.seen | (_kafka_processes(self.under) - self.before)


@pytest.fixture(autouse=True)
def _kafka_only_when_marked(request: pytest.FixtureRequest,
                            tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    if request.node.get_closest_marker("kafka") is not None:
        yield
        return
    watch = _KafkaWatch(str(tmp_path_factory.getbasetemp()))
    yield
    started = watch.stop()
    if started:
        pytest.fail(f"{request.node.nodeid} started Kafka (pid {', '.join(map(str, sorted(started)))}) "
                    "but is not marked kafka: add pytest.mark.kafka", pytrace=False)
