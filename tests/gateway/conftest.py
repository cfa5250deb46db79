"""A real Kafka cluster (through a satellite), tenants on it, and a gateway in front of it.

The gateway runs in-process on an event loop in a background thread, so the tests can
drive it with ordinary blocking clients (confluent-kafka, kafka-python, the Java tools)
and still call into it (revoke a key, count connections).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from streamplane.cli.local import LocalDeployment
from streamplane.gateway import (
    Gateway,
    GatewayConfig,
    InMemoryKeyVerifier,
    TenantIdentity,
    UpstreamCredentials,
)
from streamplane.kafka import ClusterAdmin
from streamplane.models.psc import PhysicalClusterSpec
from streamplane.tenancy import tenant_prefix
from streamplane.testing import satellite_cluster, wait_for

T = TypeVar("T")
HEALTHY_TIMEOUT_S = 150.0
#: librdkafka lines of the test clients; quiet unless a test run turns logging up
CLIENT_LOG = logging.getLogger("streamplane.rdkafka.tests")


@dataclass
class SharedCluster:
    """The physical cluster the tenants share, seen by its super-user."""

    local: LocalDeployment
    psc: PhysicalClusterSpec
    bootstrap: str

    def admin(self, timeout: float = 10.0) -> ClusterAdmin:
        su = self.psc.super_user
        return ClusterAdmin(self.bootstrap, su.name, su.password.get_secret_value(), timeout=timeout)


def shared_spec() -> PhysicalClusterSpec:
    return PhysicalClusterSpec.model_validate({
        "id": "gw-shared",
        "brokers": [{"id": 1, "zone": "zone-a"}],
        "broker_configs": {"group.initial.rebalance.delay.ms": "0",
                           "auto.create.topics.enable": "false"},
        "jvm": {"heap_mb": 256},
        "super_user": {"password": secrets.token_urlsafe(18)},
    })


@pytest.fixture(scope="session")
def one_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedCluster]:
    """One broker, run by a satellite daemon, shared by every gateway module of the run:
    each test makes tenants of its own (``new_tenant``), so they do not see each other."""
    psc = shared_spec()
    with satellite_cluster(Path(tmp_path_factory.mktemp("sat-gateway")), psc, HEALTHY_TIMEOUT_S) as (local, status):
        yield SharedCluster(local, psc, status.bootstrap or "")


@pytest.fixture(scope="module")
def cluster(one_broker: SharedCluster) -> SharedCluster:
    """The cluster behind a module's gateway (a module that needs another defines its own)."""
    return one_broker


@pytest.fixture(scope="module")
def super_admin(cluster: SharedCluster) -> Iterator[ClusterAdmin]:
    with cluster.admin() as adm:
        yield adm


# ---- the gateway ------------------------------------------------------------------------


class RunningGateway:
    """A Gateway on its own event loop thread."""

    def __init__(self, gateway: Gateway, loop: asyncio.AbstractEventLoop) -> None:
        self.gateway = gateway
        self.loop = loop

    def run(self, make: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
        async def call() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(timeout)

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        async def call() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(timeout)

    @property
    def bootstrap(self) -> str:
        return self.gateway.bootstrap

    def connections(self, key: str | None = None) -> int:
        return self.call(lambda: self.gateway.connections(key))

    def revoke(self, key: str) -> int:
        return self.call(lambda: self.gateway.revoke(key))

    def broker_ports(self) -> dict[int, int]:
        return self.call(self.gateway.broker_ports)


@contextmanager
def running_gateway(config: GatewayConfig, verifier: InMemoryKeyVerifier) -> Iterator[RunningGateway]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="gateway-loop", daemon=True)
    thread.start()
    gateway = Gateway(config, verifier)
    running = RunningGateway(gateway, loop)
    try:
        running.run(gateway.start)
        yield running
    finally:
        try:
            running.run(gateway.stop)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()


@pytest.fixture(scope="module")
def verifier() -> InMemoryKeyVerifier:
    return InMemoryKeyVerifier()


@pytest.fixture(scope="module")
def gateway(cluster: SharedCluster, verifier: InMemoryKeyVerifier) -> Iterator[RunningGateway]:
    config = GatewayConfig(upstream_bootstrap=(cluster.bootstrap,), recheck_interval_s=1.0)
    with running_gateway(config, verifier) as running:
        yield running


# ---- tenants ----------------------------------------------------------------------------


@dataclass
class Tenant:
    """A logical cluster on the shared cluster, and one API key of it."""

    cluster_id: str
    key: str
    secret: str
    bootstrap: str

    @property
    def prefix(self) -> str:
        return tenant_prefix(self.cluster_id)

    def physical(self, name: str) -> str:
        return self.prefix + name

    def confluent(self, mechanism: str = "PLAIN", **extra: Any) -> dict[str, Any]:
        return {"bootstrap.servers": self.bootstrap, "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": mechanism, "sasl.username": self.key,
                "sasl.password": self.secret, "logger": CLIENT_LOG, **extra}

    def kafka_python(self, mechanism: str = "PLAIN", **extra: Any) -> dict[str, Any]:
        return {"bootstrap_servers": self.bootstrap, "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": mechanism, "sasl_plain_username": self.key,
                "sasl_plain_password": self.secret, **extra}


TenantFactory = Callable[[], Tenant]


@pytest.fixture
def new_tenant(cluster: SharedCluster, super_admin: ClusterAdmin, verifier: InMemoryKeyVerifier,
               gateway: RunningGateway) -> Iterator[TenantFactory]:
    """Makes tenants the way the mothership does: an API key is a SCRAM user of the shared
    cluster with the same secret and PREFIXED ACLs on its logical cluster's prefix."""
    made: list[Tenant] = []

    def make() -> Tenant:
        run = uuid.uuid4().hex[:6]
        tenant = Tenant(f"lkc-{run}", f"key-{run}", secrets.token_urlsafe(18), gateway.bootstrap)
        super_admin.upsert_scram_user(tenant.key, tenant.secret)
        super_admin.grant_client_access(tenant.key, tenant.prefix)
        verifier.add(TenantIdentity(
            key=tenant.key, cluster_id=tenant.cluster_id, prefix=tenant.prefix,
            upstream=UpstreamCredentials(username=tenant.key, password=tenant.secret)),
            tenant.secret)
        made.append(tenant)
        _wait_until_login(cluster, tenant)
        return tenant

    yield make
    for tenant in made:
        verifier.remove(tenant.key)
        for topic in super_admin.list_topics(prefix=tenant.prefix):
            super_admin.delete_topic(topic.name)
        super_admin.revoke_client_access(tenant.key)
        if tenant.key in super_admin.scram_users():
            super_admin.delete_scram_user(tenant.key)


def _wait_until_login(cluster: SharedCluster, tenant: Tenant, timeout: float = 20.0) -> None:
    """New SCRAM credentials reach the broker through the metadata log; wait for that."""
    def logs_in() -> bool:
        with ClusterAdmin(cluster.bootstrap, tenant.key, tenant.secret, timeout=3) as adm:
            adm.list_topics()
        return True

    wait_for(logs_in, timeout, f"user {tenant.key} to be able to log in")


def deadline_loop(timeout: float) -> Iterator[float]:
    """Yields the time left until ``timeout`` seconds from now have passed."""
    end = time.monotonic() + timeout
    while (left := end - time.monotonic()) > 0:
        yield left
