"""Single-instance daemons: a lock file held for life, and a pid file beside it."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import psutil

LOCK_WAIT_S = 10.0


class AlreadyRunningError(RuntimeError):
    """Another process already holds the lock."""


def _pid_file(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def pid_running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie is not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@contextlib.contextmanager
def exclusive(lock_file: Path, pid_file: Path, what: str) -> Iterator[None]:
    """Hold ``lock_file`` and write our pid to ``pid_file`` for the life of the block."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fh: IO[str] = open(lock_file, "a+")  # noqa: SIM115 - held for the daemon's life
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            # a process killed -9 keeps its lock until its last thread is gone, a moment
            # after its pid already looks dead; only a live holder is a real conflict
            holder = _pid_file(pid_file)
            if time.monotonic() < deadline and (holder is None or not pid_running(holder)):
                time.sleep(0.1)
                continue
            fh.close()
            raise AlreadyRunningError(
                f"another {what} (pid {holder}) is already running with {lock_file.parent}"
            ) from None
    pid_file.write_text(f"{os.getpid()}\n")
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            pid_file.unlink()
        fh.close()


def holder_pid(lock_file: Path, pid_file: Path) -> int | None:
    """The pid of the live process that holds ``lock_file``, if there is one."""
    if not lock_file.exists():
        return None
    with open(lock_file, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _pid_file(pid_file)
            return holder if holder is not None and pid_running(holder) else None
        fcntl.flock(fh, fcntl.LOCK_UN)
    return None
