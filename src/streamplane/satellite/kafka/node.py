"""One Kafka node of a cluster on this host, as a supervised local process.

The node renders its ``server.properties``, formats its storage with Kafka's storage
tool, starts the JVM in its own session (so it outlives the satellite), is adopted by a
restarted satellite (its config path on the command line, checked against the recorded
start time), is restarted with backoff (1 s doubling to 30 s) when it dies, and stops.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from streamplane.credentials.cluster_ca import CertificateAuthority, renew_due
from streamplane.engine import KafkaDistribution
from streamplane.files import write_private
from streamplane.models.psc import JvmSpec, PhysicalClusterSpec
from streamplane.models.status import NodeState
from streamplane.proc import process
from streamplane.proc.process import ProcessHandle
from streamplane.proc.supervisor import Backoff, Supervisor
from streamplane.satellite.kafka.config import (
    CA_FILE,
    JMX_EXPORTER_CONFIG,
    KEYSTORE_FILE,
    NodePlan,
    digest,
    render_server_properties,
)
from streamplane.satellite.layout import ClusterLayout

log = logging.getLogger(__name__)

KAFKA_MAIN = "kafka.Kafka"
#: a node that died is started again after 1 s, doubling to 30 s; one up for a minute has recovered
NODE_BACKOFF = Backoff(first=1.0, maximum=30.0, stable_after=60.0)
#: how long one of Kafka's command-line tools (storage format, unregister) may run
TOOL_TIMEOUT_S = 120.0


def java_executable() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and Path(home, "bin", "java").exists():
        return str(Path(home, "bin", "java"))
    found = shutil.which("java")
    if found is None:
        raise FileNotFoundError("'java' was not found on PATH; install a Java 17+ runtime")
    return found


def kafka_command(
    dist: KafkaDistribution, plan: NodePlan, jvm: JvmSpec,
    config: Path, metrics_config: Path, logs: Path,
) -> list[str]:
    return [
        java_executable(),
        f"-Xms{jvm.heap_mb}m", f"-Xmx{jvm.heap_mb}m",
        "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        *dist.logging_jvm_options(logs),
        f"-javaagent:{dist.jmx_agent}={plan.host}:{plan.ports.metrics}:{metrics_config}",
        *jvm.extra_options,
        "-cp", dist.classpath,
        KAFKA_MAIN, str(config),
    ]


async def run_tool(argv: list[str], timeout: float = TOOL_TIMEOUT_S) -> tuple[int | None, str]:
    """Run one of Kafka's command-line tools: its exit code (None when it had to be killed
    at ``timeout``) and what it printed."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return None, ""
    return proc.returncode, out.decode(errors="replace")


def last_line(text: str, code: int) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit code {code}"


class Supervised:
    """A node's restart bookkeeping, as its status reports it (real and fake nodes alike)."""

    supervisor: Supervisor

    @property
    def restarts(self) -> int:
        return self.supervisor.restarts

    @property
    def last_exit_code(self) -> int | None:
        return self.supervisor.last_exit_code


@dataclass
class LocalKafkaNode(Supervised):
    """A Kafka node run as a process on this host (see the module's docstring)."""

    node_id: int
    layout: ClusterLayout
    handle: ProcessHandle | None = None
    supervisor: Supervisor = field(default_factory=lambda: Supervisor(NODE_BACKOFF))

    @property
    def config(self) -> Path:
        return self.layout.config_file(self.node_id)

    @property
    def marker(self) -> str:
        return str(self.config)

    # ---- configuration and storage -------------------------------------------------

    def configure(self, psc: PhysicalClusterSpec, plan: NodePlan,
                  voters: dict[int, tuple[str, int]]) -> str:
        tls_dir = self._certificates(psc, plan) if psc.tls is not None else None
        text = render_server_properties(psc, plan, voters, str(self.layout.log_dir(self.node_id)),
                                        tls_dir)
        if not self.config.exists() or self.config.read_text() != text:
            write_private(self.config, text)
        metrics = self.layout.metrics_config(self.node_id)
        if not metrics.exists():
            write_private(metrics, JMX_EXPORTER_CONFIG)
        return digest(text + repr(psc.jvm) + psc.kafka_version)

    def _certificates(self, psc: PhysicalClusterSpec, plan: NodePlan) -> str:
        """The node's TLS files, issued from the cluster's CA for its address, and issued
        again when the CA or the address changed or a third of its life is left."""
        assert psc.tls is not None
        tls_dir = self.layout.node_dir(self.node_id) / "tls"
        cert_file = tls_dir / "cert.pem"
        due = (renew_due(cert_file.read_text(), plan.host, psc.tls.ca_cert)
               if cert_file.exists() else "it has none yet")
        if due:
            ca = CertificateAuthority(psc.tls.ca_cert, psc.tls.ca_key.get_secret_value())
            issued = ca.issue(f"{psc.id} node {self.node_id}", plan.host)
            write_private(tls_dir / KEYSTORE_FILE, issued.keystore_pem(psc.tls.ca_cert))
            write_private(cert_file, issued.cert_pem)
            log.info("node %s: issued a certificate for %s (%s)", self.node_id, plan.host, due)
        ca_file = tls_dir / CA_FILE
        if not ca_file.exists() or ca_file.read_text() != psc.tls.ca_cert:
            write_private(ca_file, psc.tls.ca_cert)
        return str(tls_dir)

    async def format(self, kafka_cluster_id: str, dist: KafkaDistribution) -> str | None:
        argv = [java_executable(), "-Xmx256m", *dist.logging_jvm_options(self.layout.logs(self.node_id)),
                "-cp", dist.classpath, "kafka.tools.StorageTool", "format",
                # "=" form: a base64url id may start with "-", which would read as an option
                f"--cluster-id={kafka_cluster_id}", "-c", str(self.config),
                "--ignore-formatted"]
        code, text = await run_tool(argv)
        if code is None:
            return f"storage format of node {self.node_id} timed out"
        if code != 0:
            return f"storage format of node {self.node_id} failed: {last_line(text, code)}"
        return None

    def bind_failed(self) -> bool:
        try:
            log_file = self.layout.logs(self.node_id).joinpath("server.log")
            tail = log_file.read_text(errors="replace")[-20000:]
        except OSError:
            return False
        last_start = tail.rfind("Log4jController")  # the first line every start logs
        return "Address already in use" in tail[max(last_start, 0):]

    # ---- the process ---------------------------------------------------------------

    def adopt(self) -> bool:
        """Find our process if it is still running (after a satellite restart)."""
        if self.handle is not None and process.is_alive(self.handle):
            return True
        found = process.find_by_marker(self.marker, KAFKA_MAIN)
        if not found:
            self.handle = None
            return False
        found.sort(key=lambda h: h.create_time)
        self.handle = found[0]
        self.supervisor.started(self.handle.create_time)
        for extra in found[1:]:
            # should never happen; a second copy of a node must not keep running
            log.warning("node %s: a duplicate process %s was found; stopping it", self.node_id, extra.pid)
            os.kill(extra.pid, signal.SIGTERM)
        return True

    def alive(self) -> bool:
        return self.handle is not None and process.is_alive(self.handle)

    def observe(self, now: float) -> str | None:
        """Notice a death; returns a sentence if the process died since the last look."""
        if self.handle is None or process.is_alive(self.handle):
            if self.handle is not None:
                self.supervisor.running(now)
            return None
        code = process.reap(self.handle.pid)
        pid = self.handle.pid
        self.handle = None
        waited = self.supervisor.exited(now, code)
        exit_text = f"exit code {code}" if code is not None else "exit code unknown"
        return f"node {self.node_id} (pid {pid}) died ({exit_text}); restarting in {waited:.0f}s"

    def due(self, now: float) -> bool:
        return self.handle is None and self.supervisor.due(now)

    def start(self, psc: PhysicalClusterSpec, plan: NodePlan, dist: KafkaDistribution) -> None:
        argv = kafka_command(
            dist, plan, psc.jvm, self.config,
            self.layout.metrics_config(self.node_id), self.layout.logs(self.node_id))
        self.handle = process.spawn(argv, self.layout.stdout(self.node_id), self.layout.node_dir(self.node_id))
        self.supervisor.started(time.time())

    async def stop(self, grace: float) -> None:
        self.supervisor.stopping = True
        if self.handle is not None:
            self.supervisor.last_exit_code = await process.terminate(self.handle, grace)
        self.handle = None

    def resume(self) -> None:
        self.supervisor.resume()

    def state(self, registered: bool, plan: NodePlan) -> NodeState:
        if self.supervisor.stopping:
            return NodeState.STOPPING if self.handle else NodeState.STOPPED
        if self.handle is None:
            return NodeState.RESTARTING if self.restarts else NodeState.STOPPED
        if plan.is_broker and not registered:
            return NodeState.STARTING
        return NodeState.RUNNING
