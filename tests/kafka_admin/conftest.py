"""A satellite running a 1-broker cluster, and real Kafka clients to exercise what we grant."""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Producer

from streamplane.cli.local import LocalDeployment
from streamplane.kafka import ClusterAdmin
from streamplane.models.psc import PhysicalClusterSpec
from streamplane.testing import satellite_cluster, scram_client_config, wait_for

HEALTHY_TIMEOUT_S = 120.0
#: librdkafka lines of the test clients; quiet unless a test run turns logging up
CLIENT_LOG = logging.getLogger("streamplane.rdkafka.tests")


@dataclass
class SoloCluster:
    local: LocalDeployment
    psc: PhysicalClusterSpec
    bootstrap: str

    @property
    def super_user(self) -> tuple[str, str]:
        return self.psc.super_user.name, self.psc.super_user.password.get_secret_value()

    def admin(self, user: str | None = None, password: str | None = None,
              timeout: float = 10.0) -> ClusterAdmin:
        """A ClusterAdmin as the super-user, or as ``user``."""
        if user is None:
            user, password = self.super_user
        assert password is not None
        return ClusterAdmin(self.bootstrap, user, password, timeout=timeout)

    def client_config(self, user: str, password: str) -> dict[str, Any]:
        return {**scram_client_config(self.bootstrap, user, password), "logger": CLIENT_LOG}


def solo_spec() -> PhysicalClusterSpec:
    return PhysicalClusterSpec.model_validate({
        "id": "admin-solo",
        "brokers": [{"id": 1, "zone": "zone-a"}],
        "broker_configs": {"group.initial.rebalance.delay.ms": "0"},
        "jvm": {"heap_mb": 256},
        "super_user": {"password": secrets.token_urlsafe(18)},
    })


@pytest.fixture(scope="session")
def solo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoloCluster]:
    """A satellite daemon running one broker (replication factor 1 everywhere)."""
    psc = solo_spec()
    with satellite_cluster(tmp_path_factory.mktemp("sat-admin"), psc, HEALTHY_TIMEOUT_S) as (local, status):
        yield SoloCluster(local, psc, status.bootstrap or "")


@pytest.fixture(scope="session")
def admin(solo: SoloCluster) -> Iterator[ClusterAdmin]:
    with solo.admin() as adm:
        yield adm


def unique(prefix: str = "t-") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@dataclass
class ApiKey:
    """A SCRAM user created for one test, with whatever access the test granted."""

    name: str
    password: str


@pytest.fixture
def api_key(admin: ClusterAdmin) -> Iterator[ApiKey]:
    key = ApiKey(unique("key-"), secrets.token_urlsafe(18))
    admin.upsert_scram_user(key.name, key.password)
    try:
        yield key
    finally:
        admin.revoke_client_access(key.name)
        if key.name in admin.scram_users():
            admin.delete_scram_user(key.name)


def wait_until_login(solo: SoloCluster, key: ApiKey, timeout: float = 15.0) -> None:
    """New SCRAM credentials reach the broker through the metadata log; wait for that."""
    def logs_in() -> bool:
        with solo.admin(key.name, key.password, timeout=3) as adm:
            adm.list_topics()
        return True

    wait_for(logs_in, timeout, f"user {key.name} to be able to log in")


def produce(config: dict[str, Any], topic: str, count: int, timeout: float = 30.0,
            **overrides: Any) -> list[KafkaError]:
    """Produce ``count`` messages with acks=all and idempotence; the delivery errors."""
    producer = Producer({**config, "acks": "all", "enable.idempotence": True,
                         "message.timeout.ms": int(timeout * 1000) - 5000, **overrides})
    errors: list[KafkaError] = []
    delivered: list[int] = []

    def on_delivery(err: KafkaError | None, msg: Any) -> None:
        if err is not None:
            errors.append(err)
        else:
            delivered.append(msg.offset())

    for i in range(count):
        producer.produce(topic, key=str(i).encode(), value=f"m{i}".encode(), on_delivery=on_delivery)
    left = producer.flush(timeout)
    assert left == 0, f"{left} message(s) neither delivered nor failed after {timeout} s"
    assert len(errors) + len(delivered) == count
    return errors


def produce_transaction(config: dict[str, Any], topic: str, transactional_id: str,
                        timeout: float = 20.0) -> None:
    """One committed transaction of three messages; raises KafkaException if refused."""
    producer = Producer({**config, "transactional.id": transactional_id,
                         "transaction.timeout.ms": 30000})
    producer.init_transactions(timeout)
    producer.begin_transaction()
    for i in range(3):
        producer.produce(topic, value=f"tx{i}".encode())
    producer.commit_transaction(timeout)


def consume_and_commit(config: dict[str, Any], topic: str, group: str, expect: int,
                       timeout: float = 30.0) -> int:
    """Read ``expect`` messages in consumer group ``group``, commit, and return the
    committed offset total. Raises AssertionError with the client's error on refusal."""
    consumer = Consumer({**config, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    try:
        consumer.subscribe([topic])
        got = 0
        deadline = time.monotonic() + timeout
        while got < expect and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            err = msg.error()
            assert err is None, f"consumer error: {err.str()} ({err.name()})"
            got += 1
        assert got == expect, f"read {got} of {expect} messages within {timeout} s"
        consumer.commit(asynchronous=False)
        committed = consumer.committed(consumer.assignment(), timeout=10)
        return sum(tp.offset for tp in committed if tp.offset >= 0)
    finally:
        consumer.close()


def consumer_error(config: dict[str, Any], topic: str, group: str,
                   timeout: float = 20.0) -> KafkaError:
    """The first error a consumer in ``group`` reading ``topic`` reports."""
    consumer = Consumer({**config, "group.id": group, "auto.offset.reset": "earliest"})
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is not None:
                err: KafkaError = msg.error()
                return err
        raise AssertionError(f"no error from a consumer of {topic} in group {group} within {timeout} s")
    finally:
        consumer.close()
