"""Fixtures that run real satellites (as daemons, like production) and real Kafka."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from streamplane.cli.local import LocalDeployment
from streamplane.engine.distribution import EngineResolver
from streamplane.models.psc import PhysicalClusterSpec
from streamplane.models.status import ClusterState, ClusterStatus
from streamplane.testing import scram_client_config, wait_for
from streamplane.versions import DEFAULT_KAFKA_VERSION

HEALTHY_TIMEOUT_S = 120.0


@dataclass
class RunningCluster:
    local: LocalDeployment
    psc: PhysicalClusterSpec

    @property
    def id(self) -> str:
        return self.psc.id

    def status(self) -> ClusterStatus:
        st = self.local.status(self.id)
        assert st is not None, f"no status reported for {self.id}"
        return st

    def client_config(self) -> dict[str, str]:
        st = self.status()
        assert st.bootstrap
        return scram_client_config(st.bootstrap, self.psc.super_user.name,
                                   self.psc.super_user.password.get_secret_value())

    def wait_healthy(self, timeout: float = HEALTHY_TIMEOUT_S, since: float = 0.0) -> ClusterStatus:
        def healthy() -> ClusterStatus | None:
            st = self.local.status(self.id)
            ok = (st is not None and st.status == ClusterState.HEALTHY
                  and st.observed_generation == self.psc.generation and st.updated_at > since)
            return st if ok else None

        try:
            return wait_for(healthy, timeout, f"cluster {self.id} to be healthy")
        except TimeoutError as exc:
            st = self.local.status(self.id)
            seen = (f"{st.status.value}, generation {st.observed_generation}/{self.psc.generation}, "
                    f"under-replicated {st.under_replicated_partitions}, message {st.message!r}, "
                    f"last error {st.last_error!r}" if st else "no status")
            raise TimeoutError(f"{exc}; last status: {seen}; satellite log:\n"
                               f"{self.local.log_tail(30)}") from None


def three_broker_spec(cluster_id: str = "trio") -> PhysicalClusterSpec:
    return PhysicalClusterSpec.model_validate({
        "id": cluster_id,
        "kafka_version": DEFAULT_KAFKA_VERSION,
        "controllers": {"mode": "combined", "count": 3},
        "brokers": [{"id": 1, "zone": "zone-a"}, {"id": 2, "zone": "zone-b"},
                    {"id": 3, "zone": "zone-c"}],
        "broker_configs": {"default.replication.factor": "3", "min.insync.replicas": "2",
                           "group.initial.rebalance.delay.ms": "0"},
        "jvm": {"heap_mb": 256},
        "super_user": {"password": secrets.token_urlsafe(18)},
    })


@pytest.fixture(scope="session")
def kafka_installed() -> None:
    EngineResolver().resolve(DEFAULT_KAFKA_VERSION)


@pytest.fixture(scope="session")
def trio(kafka_installed: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    """A satellite daemon running a 3-broker cluster (RF=3, min.insync.replicas=2)."""
    data_dir: Path = tmp_path_factory.mktemp("sat-trio")
    local = LocalDeployment(data_dir)
    cluster = RunningCluster(local, three_broker_spec())
    try:
        local.source.submit(cluster.psc)
        local.start_satellite()
        cluster.wait_healthy()
        yield cluster
    finally:
        local.down()
