"""The embedded default: a local satellite and the system cluster (``up``, ``down``, ``status``)."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from streamplane.models.psc import BrokerSpec, PhysicalClusterSpec, SuperUser
from streamplane.models.status import ClusterState, ClusterStatus
from streamplane.satellite import process
from streamplane.satellite.agent import satellite_pid
from streamplane.satellite.layout import SatelliteLayout, read_json
from streamplane.satellite.node import KAFKA_MAIN
from streamplane.satellite.source import DirectorySource, read_statuses

SYSTEM_CLUSTER_ID = "system"
LOCAL_SATELLITE = "local"
SATELLITE_STOP_TIMEOUT_S = 150.0


class LocalError(RuntimeError):
    """Something a user of ``up``/``down`` must act on; the message says what."""


def system_cluster_spec() -> PhysicalClusterSpec:
    """One combined KRaft node: small, because it only carries the control channel."""
    return PhysicalClusterSpec(
        id=SYSTEM_CLUSTER_ID,
        satellite=LOCAL_SATELLITE,
        brokers=(BrokerSpec(id=1, zone="local"),),
        broker_configs={"log.retention.hours": "168"},
        super_user=SuperUser(password=secrets.token_urlsafe(24)),
    )


@dataclass
class LocalDeployment:
    """A satellite daemon on this machine, driven through its data directory."""

    data_dir: Path
    satellite_name: str = LOCAL_SATELLITE

    @property
    def layout(self) -> SatelliteLayout:
        return SatelliteLayout(self.data_dir)

    @property
    def source(self) -> DirectorySource:
        return DirectorySource(self.layout.desired_dir)

    def ensure_system_cluster(self) -> PhysicalClusterSpec:
        existing = self.source.get(SYSTEM_CLUSTER_ID)
        if existing is not None:
            return existing
        psc = system_cluster_spec()
        self.source.submit(psc)
        return psc

    def satellite_pid(self) -> int | None:
        return satellite_pid(self.layout)

    def start_satellite(self) -> int:
        pid = self.satellite_pid()
        if pid is not None:
            return pid
        self.layout.root.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "streamplane", "satellite", "run",
                "--data-dir", str(self.data_dir), "--name", self.satellite_name]
        with open(self.layout.log_file, "ab") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.satellite_pid() == proc.pid:
                return proc.pid
            if proc.poll() is not None:
                raise LocalError(f"the satellite exited at once; see {self.layout.log_file}:\n"
                                 + self.log_tail())
            time.sleep(0.1)
        raise LocalError(f"the satellite did not start within 15 s; see {self.layout.log_file}")

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.layout.log_file.read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def statuses(self) -> list[ClusterStatus]:
        return read_statuses(self.layout.status_dir)

    def status(self, cluster_id: str) -> ClusterStatus | None:
        return next((s for s in self.statuses() if s.id == cluster_id), None)

    def heartbeat(self) -> dict[str, object] | None:
        try:
            data = read_json(self.layout.heartbeat_file)
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def wait_healthy(self, cluster_id: str, generation: int, timeout: float,
                     progress: bool = True) -> ClusterStatus:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            st = self.status(cluster_id)
            if st is not None:
                line = f"{cluster_id}: {st.status}" + (f" ({st.message})" if st.message else "")
                if progress and line != last:
                    print(line, file=sys.stderr, flush=True)
                    last = line
                if st.status == ClusterState.HEALTHY and st.observed_generation == generation:
                    return st
            if self.satellite_pid() is None:
                raise LocalError("the satellite stopped; its last words:\n" + self.log_tail())
            time.sleep(0.25)
        raise LocalError(f"cluster {cluster_id} was not healthy after {timeout:.0f} s; "
                         f"see {self.layout.log_file}")

    def down(self, timeout: float = SATELLITE_STOP_TIMEOUT_S) -> list[str]:
        """Stop the satellite (which stops its clusters) and anything it left behind."""
        said: list[str] = []
        pid = self.satellite_pid()
        if pid is not None and pid > 0:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.satellite_pid() is not None and time.monotonic() < deadline:
                time.sleep(0.2)
            if self.satellite_pid() is not None:
                os.kill(pid, signal.SIGKILL)
                said.append(f"the satellite (pid {pid}) did not stop in {timeout:.0f} s; killed it")
            else:
                said.append(f"stopped the satellite (pid {pid}) and its clusters")
        for handle in process.find_by_marker(str(self.layout.clusters_dir), KAFKA_MAIN):
            # a satellite killed -9 leaves its brokers running; they are still ours to stop
            code = _terminate_blocking(handle, 60.0)
            said.append(f"stopped leftover Kafka process {handle.pid} (exit {code})")
        return said


def _terminate_blocking(handle: process.ProcessHandle, grace: float) -> int | None:
    import asyncio

    return asyncio.run(process.terminate(handle, grace))
