"""Where a satellite keeps things inside its data directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SatelliteLayout:
    root: Path

    @property
    def desired_dir(self) -> Path:
        return self.root / "desired"

    @property
    def status_dir(self) -> Path:
        return self.root / "status"

    @property
    def clusters_dir(self) -> Path:
        return self.root / "clusters"

    @property
    def pid_file(self) -> Path:
        return self.root / "satellite.pid"

    @property
    def lock_file(self) -> Path:
        return self.root / "satellite.lock"

    @property
    def log_file(self) -> Path:
        return self.root / "satellite.log"

    @property
    def heartbeat_file(self) -> Path:
        return self.root / "satellite.json"

    def cluster(self, cluster_id: str) -> ClusterLayout:
        return ClusterLayout(self.clusters_dir / cluster_id)


@dataclass(frozen=True)
class ClusterLayout:
    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / "cluster.json"

    @property
    def ca_file(self) -> Path:
        """The cluster's CA (PEM), for the satellite's own clients of its TLS listeners."""
        return self.root / "ca.pem"

    def node_dir(self, node_id: int) -> Path:
        return self.root / "nodes" / str(node_id)

    def config_file(self, node_id: int) -> Path:
        return self.node_dir(node_id) / "server.properties"

    def metrics_config(self, node_id: int) -> Path:
        return self.node_dir(node_id) / "jmx-exporter.yaml"

    def log_dir(self, node_id: int) -> Path:
        return self.node_dir(node_id) / "data"

    def logs(self, node_id: int) -> Path:
        return self.node_dir(node_id) / "logs"

    def stdout(self, node_id: int) -> Path:
        return self.node_dir(node_id) / "logs" / "stdout.log"


