"""Starting, finding, watching and stopping the OS processes a satellite owns.

Processes are started in their own session with output to a file, so they outlive a
satellite that is killed; a restarted satellite finds them again by the unique config
path on their command line and checks the recorded start time, so a recycled pid is
never mistaken for one of ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class ProcessHandle:
    pid: int
    create_time: float

    def to_json(self) -> dict[str, float]:
        return {"pid": self.pid, "create_time": self.create_time}

    @classmethod
    def from_json(cls, data: dict[str, float]) -> ProcessHandle:
        return cls(pid=int(data["pid"]), create_time=float(data["create_time"]))


def spawn(argv: list[str], log_path: Path, cwd: Path, env: dict[str, str] | None = None) -> ProcessHandle:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    return ProcessHandle(pid=proc.pid, create_time=psutil.Process(proc.pid).create_time())


def reap(pid: int) -> int | None:
    """Collect the exit status of a child that has ended; None if not ours or still running."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    if done == 0:
        return None
    return os.waitstatus_to_exitcode(status)


def is_alive(handle: ProcessHandle) -> bool:
    try:
        proc = psutil.Process(handle.pid)
        if abs(proc.create_time() - handle.create_time) > 0.05:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def find_by_marker(marker: str, main_class: str) -> list[ProcessHandle]:
    """Live processes whose command line contains both ``main_class`` and ``marker``."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "create_time", "status"]):
        try:
            cmd = proc.info["cmdline"] or []
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if main_class in cmd and any(marker in part for part in cmd):
                found.append(ProcessHandle(proc.info["pid"], proc.info["create_time"]))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


async def terminate(handle: ProcessHandle, grace: float) -> int | None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL. Returns the exit code if known."""
    if not is_alive(handle):
        return reap(handle.pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(handle.pid, signal.SIGTERM)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while loop.time() < deadline:
        code = reap(handle.pid)
        if code is not None or not is_alive(handle):
            return code
        await asyncio.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(handle.pid, signal.SIGKILL)
    while is_alive(handle):
        reap(handle.pid)
        await asyncio.sleep(0.05)
    return reap(handle.pid)


def rss_bytes(handle: ProcessHandle) -> int | None:
    try:
        return int(psutil.Process(handle.pid).memory_info().rss)
    except psutil.NoSuchProcess:
        return None
