"""Helpers for tests and benchmarks that drive real Streamplane processes and real Kafka."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from confluent_kafka import Consumer, KafkaError, Producer

from streamplane.cli.local import LocalDeployment
from streamplane.engine.distribution import EngineResolver
from streamplane.models.psc import PhysicalClusterSpec
from streamplane.models.status import ClusterStatus
from streamplane.mothership.server import MothershipLayout

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except Exception as exc:
            last_exc = exc
        else:
            if result:
                return result
        time.sleep(interval)
    suffix = f" (last error: {last_exc})" if last_exc else ""
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}{suffix}")


@contextlib.contextmanager
def satellite_cluster(data_dir: Path, psc: PhysicalClusterSpec,
                      timeout: float = 180.0) -> Iterator[tuple[LocalDeployment, ClusterStatus]]:
    """A satellite daemon in ``data_dir`` running ``psc``, healthy; stopped on exit."""
    EngineResolver().resolve(psc.kafka_version)
    local = LocalDeployment(data_dir)
    try:
        local.source.submit(psc)
        local.start_satellite()
        status = local.wait_healthy(psc.id, psc.generation, timeout, progress=False)
        if not status.bootstrap:
            raise RuntimeError(f"cluster {psc.id} is healthy but reports no bootstrap address")
        yield local, status
    finally:
        local.down()


def scram_client_config(bootstrap: str, user: str, password: str) -> dict[str, Any]:
    """librdkafka settings for a cluster's client listener."""
    return {
        "bootstrap.servers": bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": user,
        "sasl.password": password,
    }


@dataclass
class SequenceProducer:
    """Produces sequence-numbered messages at a steady rate in a thread, tracking acks.

    Message value is the decimal sequence number; ``acked`` holds every sequence the
    broker acknowledged, ``errors`` every delivery failure.
    """

    config: dict[str, Any]
    topic: str
    rate_per_s: float = 200.0
    acked: set[int] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    ack_times: list[float] = field(default_factory=list)
    sent: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> SequenceProducer:
        self._thread = threading.Thread(target=self._run, name="sequence-producer", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        producer = Producer({
            **self.config, "acks": "all", "enable.idempotence": True,
            "linger.ms": 5, "delivery.timeout.ms": 120000,
        })

        def delivered(err: KafkaError | None, msg: Any) -> None:
            if err is not None:
                self.errors.append(str(err))
            else:
                self.acked.add(int(msg.value()))
                self.ack_times.append(time.monotonic())

        interval = 1.0 / self.rate_per_s
        next_at = time.monotonic()
        while not self._stop.is_set():
            producer.produce(self.topic, key=str(self.sent % 64).encode(),
                             value=str(self.sent).encode(), on_delivery=delivered)
            self.sent += 1
            producer.poll(0)
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        remaining = producer.flush(60)
        if remaining:
            self.errors.append(f"{remaining} message(s) still unacknowledged after flush")

    def acked_since(self, t: float) -> int:
        return sum(1 for x in list(self.ack_times) if x >= t)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(90)


def consume_sequences(config: dict[str, Any], topic: str, expect: int, timeout: float) -> list[int]:
    """Read ``topic`` from the beginning with a fresh group until ``expect`` values arrived."""
    consumer = Consumer({**config, "group.id": f"verify-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    values: list[int] = []
    deadline = time.monotonic() + timeout
    try:
        while len(values) < expect and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            values.append(int(msg.value()))
    finally:
        consumer.close()
    return values


def fill_topic(config: dict[str, Any], topic: str, nbytes: int, *, keys: int, blob_bytes: int,
               timeout: float = 600.0) -> float:
    """Write ``nbytes`` of random blobs to ``topic`` (keys spread over ``keys`` values), as
    fast as the cluster takes them with ``acks=all``; return the rate in bytes/s."""
    producer = Producer({**config, "acks": "all", "linger.ms": 50, "batch.size": 1 << 20,
                         "compression.type": "none"})
    blob = os.urandom(blob_bytes)
    start = time.monotonic()
    for i in range(nbytes // blob_bytes):
        while True:
            try:
                producer.produce(topic, key=str(i % keys).encode(), value=blob)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(timeout):
        raise RuntimeError(f"{topic}: messages still unacknowledged after {timeout:.0f} s")
    return nbytes / (time.monotonic() - start)


# ---- a platform driven through its CLI and API (``streamplane up`` in a data dir) -----------


@dataclass
class Platform:
    data_dir: Path
    url: str
    token: str

    @property
    def local(self) -> LocalDeployment:
        return LocalDeployment(self.data_dir, channel_file=MothershipLayout(self.data_dir).channel_file)

    def client(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30,
                            headers={"Authorization": f"Bearer {token or self.token}"})

    def cluster(self, ref: str) -> dict[str, Any] | None:
        with self.client() as c:
            r = c.get(f"/v1/clusters/{ref}")
        if r.status_code == 404:
            return None
        r.raise_for_status()
        data: dict[str, Any] = r.json()
        return data

    def create(self, name: str, **fields: Any) -> dict[str, Any]:
        with self.client() as c:
            r = c.post("/v1/clusters", json={"name": name, **fields})
        assert r.status_code == 202, r.text
        data: dict[str, Any] = r.json()
        return data

    def wait_status(self, ref: str, status: str, timeout: float = 180) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            c = self.cluster(ref)
            if c is not None and c["status"] == "FAILED" and status != "FAILED":
                raise AssertionError(f"cluster {ref} FAILED: {c['status_reason']}")
            return c if c is not None and c["status"] == status else None

        return wait_for(reached, timeout, f"cluster {ref} to be {status}", interval=0.5)

    def wait_gone(self, ref: str, timeout: float = 120) -> None:
        wait_for(lambda: self.cluster(ref) is None, timeout, f"cluster {ref} to be deleted", interval=0.5)

    def delete(self, ref: str) -> None:
        with self.client() as c:
            r = c.delete(f"/v1/clusters/{ref}")
        assert r.status_code == 202, r.text
        self.wait_gone(ref)


def streamplane(*args: str, timeout: float = 300, env: dict[str, str] | None = None,
                ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streamplane", *args], capture_output=True, text=True,
                          timeout=timeout, check=False, env={**os.environ, **(env or {})})


def cli(platform: Platform, *args: str, timeout: float = 300) -> str:
    """``streamplane ARGS... --data-dir ...``, which must succeed; its stdout."""
    res = streamplane(*args, "--data-dir", str(platform.data_dir), timeout=timeout)
    assert res.returncode == 0, f"streamplane {' '.join(args)} failed:\n{res.stdout}{res.stderr}"
    return res.stdout


def parse_properties(text: str) -> dict[str, str]:
    props = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            props[key.strip()] = value.strip()
    return props
