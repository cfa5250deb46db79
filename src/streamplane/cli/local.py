"""The embedded default: a local satellite and the system cluster (``up``, ``down``, ``status``)."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from streamplane.channel import ChannelConfig
from streamplane.channel.source import DirectorySource, read_statuses
from streamplane.files import read_json
from streamplane.models.psc import BrokerSpec, PhysicalClusterSpec, SuperUser
from streamplane.models.status import ClusterState, ClusterStatus
from streamplane.mothership.gateways import STOP_GRACE_S as GATEWAY_STOP_GRACE_S
from streamplane.mothership.gateways import stop_gateways
from streamplane.mothership.server import MothershipLayout
from streamplane.proc import process
from streamplane.proc.daemon import pid_running
from streamplane.satellite.agent import STOP_BUDGET_S, satellite_pid
from streamplane.satellite.kafka.node import KAFKA_MAIN
from streamplane.satellite.layout import SatelliteLayout
from streamplane.satellite.local_channel import channel_config_for_local

SYSTEM_CLUSTER_ID = "system"
LOCAL_SATELLITE = "local"
#: how long `down` waits for each part before it kills what is left; the satellite's
#: share is its own stop budget (every cluster's controlled shutdown) and a margin
MOTHERSHIP_STOP_TIMEOUT_S = 10.0
SATELLITE_STOP_TIMEOUT_S = STOP_BUDGET_S + 5.0
LEFTOVER_GRACE_S = 5.0
DOWN_BUDGET_S = MOTHERSHIP_STOP_TIMEOUT_S + GATEWAY_STOP_GRACE_S + SATELLITE_STOP_TIMEOUT_S + LEFTOVER_GRACE_S


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
    zone: str = "zone-a"
    max_brokers: int = 12
    #: the address the satellite's nodes bind and advertise
    host: str = "127.0.0.1"
    #: what the satellite's command line is run inside (e.g. its network namespace)
    wrap: tuple[str, ...] = ()
    #: the control channel config the satellite connects with, once the file exists
    channel_file: Path | None = None

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
        argv = [*self.wrap, sys.executable, "-m", "streamplane", "satellite", "run",
                "--data-dir", str(self.data_dir), "--name", self.satellite_name,
                "--zone", self.zone, "--host", self.host, "--max-brokers", str(self.max_brokers)]
        if self.channel_file is not None:
            argv += ["--channel", str(self.channel_file)]
        proc = _daemon(argv, self.layout.log_file)
        _wait_started(proc, self.satellite_pid, "satellite", self.layout.log_file)
        return proc.pid

    # ---- the mothership ------------------------------------------------------------

    @property
    def mothership(self) -> MothershipLayout:
        return MothershipLayout(self.data_dir)

    def mothership_pid(self) -> int | None:
        return self.mothership.pid()

    def ensure_channel(self) -> ChannelConfig:
        """The channel config the mothership and satellites share (made once, kept)."""
        path = self.mothership.channel_file
        if path.exists():
            return ChannelConfig.load(path)
        config = channel_config_for_local(self.data_dir, ChannelConfig.new_encryption_key())
        config.save(path)
        return config

    def start_mothership(self, db_url: str | None = None, timeout: float = 60.0) -> str:
        """Start the mothership daemon (if it is not running) and return its API URL."""
        self.mothership.ensure_token()
        if self.mothership_pid() is None:
            argv = [sys.executable, "-m", "streamplane", "mothership", "run",
                    "--data-dir", str(self.data_dir)]
            if db_url:
                argv += ["--db", db_url]
            self.mothership.root.mkdir(parents=True, exist_ok=True)
            proc = _daemon(argv, self.mothership.log_file)
            _wait_started(proc, self.mothership_pid, "mothership", self.mothership.log_file)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            url = self.mothership.api_url()
            if url and _healthy(url):
                return url
            if self.mothership_pid() is None:
                raise LocalError("the mothership stopped; its last words:\n"
                                 + _tail(self.mothership.log_file))
            time.sleep(0.2)
        raise LocalError(f"the mothership API did not answer within {timeout:.0f} s; "
                         f"see {self.mothership.log_file}")

    def stop_mothership(self, timeout: float = 60.0) -> str | None:
        pid = self.mothership_pid()
        if pid is None:
            return None
        return _stop_daemon(pid, self.mothership_pid, "mothership", timeout)

    def log_tail(self, lines: int = 15) -> str:
        return _tail(self.layout.log_file, lines)

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

    def down(self) -> list[str]:
        """Stop the mothership, its gateways, the satellite (which stops its clusters) and
        anything it left behind. Each step has a bounded time and anything still running
        after it is killed, so this returns within about ``DOWN_BUDGET_S`` whatever state
        the clusters are in; killing loses no acknowledged data (design rule 1)."""
        said: list[str] = []
        stopped = self.stop_mothership(MOTHERSHIP_STOP_TIMEOUT_S)
        if stopped:
            said.append(stopped)
        said += stop_gateways(self.mothership.root)  # they outlive the mothership by design
        pid = self.satellite_pid()
        if pid is not None:
            said.append(_stop_daemon(pid, self.satellite_pid, "satellite and its clusters",
                                     SATELLITE_STOP_TIMEOUT_S))
        # a satellite killed -9 (or just now, for taking too long) leaves its brokers
        # running; they are still ours to stop, all at once
        leftovers = process.find_by_marker(str(self.layout.clusters_dir), KAFKA_MAIN)
        for handle, code in zip(leftovers, _terminate_all(leftovers, LEFTOVER_GRACE_S), strict=True):
            said.append(f"stopped leftover Kafka process {handle.pid} (exit {code})")
        return said


def _daemon(argv: list[str], log_file: Path) -> subprocess.Popen[bytes]:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _wait_started(proc: subprocess.Popen[bytes], pid_of: Callable[[], int | None], what: str,
                  log_file: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid_of() == proc.pid:
            return
        if proc.poll() is not None:
            raise LocalError(f"the {what} exited at once; see {log_file}:\n" + _tail(log_file))
        time.sleep(0.1)
    raise LocalError(f"the {what} did not start within {timeout:.0f} s; see {log_file}")


def _stop_daemon(pid: int, pid_of: Callable[[], int | None], what: str, timeout: float) -> str:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout

    def running() -> bool:
        # its lock goes a moment before the process does: wait for both
        return pid_of() is not None or pid_running(pid)

    while running() and time.monotonic() < deadline:
        time.sleep(0.2)
    if running():
        os.kill(pid, signal.SIGKILL)
        return f"the {what} (pid {pid}) did not stop in {timeout:.0f} s; killed it"
    return f"stopped the {what} (pid {pid})"


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _terminate_all(handles: list[process.ProcessHandle], grace: float) -> list[int | None]:
    async def terminate() -> list[int | None]:
        return list(await asyncio.gather(*(process.terminate(h, grace) for h in handles)))

    return asyncio.run(terminate()) if handles else []
