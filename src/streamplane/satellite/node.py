"""One supervised Kafka process (broker, controller, or both) of a cluster."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from streamplane.engine import KafkaDistribution
from streamplane.models.psc import JvmSpec
from streamplane.models.status import NodeState
from streamplane.proc import process
from streamplane.proc.process import ProcessHandle
from streamplane.satellite.render import NodePlan

log = logging.getLogger(__name__)

KAFKA_MAIN = "kafka.Kafka"
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0
#: a node that stayed up this long has its backoff reset
STABLE_AFTER_S = 60.0


def java_executable() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and Path(home, "bin", "java").exists():
        return str(Path(home, "bin", "java"))
    found = shutil.which("java")
    if found is None:
        raise FileNotFoundError("'java' was not found on PATH; install a Java 17+ runtime")
    return found


def kafka_command(
    dist: KafkaDistribution, plan: NodePlan, host: str, jvm: JvmSpec,
    config: Path, metrics_config: Path, logs: Path,
) -> list[str]:
    return [
        java_executable(),
        f"-Xms{jvm.heap_mb}m", f"-Xmx{jvm.heap_mb}m",
        "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        *dist.logging_jvm_options(logs),
        f"-javaagent:{dist.jmx_agent}={host}:{plan.ports.metrics}:{metrics_config}",
        *jvm.extra_options,
        "-cp", dist.classpath,
        KAFKA_MAIN, str(config),
    ]


@dataclass
class NodeRunner:
    """Supervises one process: starts it, notices when it dies, restarts it with backoff."""

    node_id: int
    config: Path
    handle: ProcessHandle | None = None
    restarts: int = 0
    last_exit_code: int | None = None
    started_at: float = 0.0
    next_start_at: float = 0.0
    backoff: float = BACKOFF_FIRST_S
    stopping: bool = False
    _died_unexpectedly: bool = field(default=False, repr=False)

    @property
    def marker(self) -> str:
        return str(self.config)

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
        self.started_at = self.handle.create_time
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
            if self.handle is not None and now - self.started_at > STABLE_AFTER_S:
                self.backoff = BACKOFF_FIRST_S
            return None
        code = process.reap(self.handle.pid)
        self.last_exit_code = code
        pid = self.handle.pid
        self.handle = None
        self.next_start_at = now + self.backoff
        waited = self.backoff
        self.backoff = min(self.backoff * 2, BACKOFF_MAX_S)
        self.restarts += 1
        exit_text = f"exit code {code}" if code is not None else "exit code unknown"
        return f"node {self.node_id} (pid {pid}) died ({exit_text}); restarting in {waited:.0f}s"

    def due(self, now: float) -> bool:
        return self.handle is None and not self.stopping and now >= self.next_start_at

    def start(self, argv: list[str], stdout: Path, cwd: Path) -> ProcessHandle:
        self.handle = process.spawn(argv, stdout, cwd)
        self.started_at = time.time()
        return self.handle

    async def stop(self, grace: float) -> None:
        self.stopping = True
        if self.handle is not None:
            self.last_exit_code = await process.terminate(self.handle, grace)
        self.handle = None

    def state(self) -> NodeState:
        if self.stopping:
            return NodeState.STOPPING if self.handle else NodeState.STOPPED
        if self.handle is None:
            return NodeState.RESTARTING if self.restarts else NodeState.STOPPED
        return NodeState.RUNNING

    def plan_state(self, registered: bool, plan: NodePlan) -> NodeState:
        base = self.state()
        if base == NodeState.RUNNING and plan.is_broker and not registered:
            return NodeState.STARTING
        return base
