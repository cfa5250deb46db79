"""A real mothership API for CLI tests: the FastAPI app over a real SQLite store, served by
uvicorn on a free loopback port in a background thread. No Kafka and no reconciler, so
clusters stay PROVISIONING unless a test moves them along through the store, as the
reconciler would."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from click.testing import CliRunner, Result

from streamplane.cli.main import cli
from streamplane.files import write_json
from streamplane.mothership.api import create_app
from streamplane.mothership.server import MothershipLayout
from streamplane.mothership.store import LogicalCluster, Store

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
#: deadline for a background "reconciler" to see what the CLI created
SEE_TIMEOUT_S = 10.0

#: environment the CLI reads; cleared so the developer's own settings never leak in
CLI_ENV_VARS = ("STREAMPLANE_API_URL", "STREAMPLANE_TOKEN", "STREAMPLANE_DATA_DIR", "STREAMPLANE_API_SECRET")


@dataclass(frozen=True)
class LiveApi:
    url: str
    token: str
    store: Store
    #: a data dir as `streamplane up` leaves it: api.json with the URL, admin-token
    data_dir: Path

    def cluster_named(self, name: str, timeout: float = SEE_TIMEOUT_S) -> LogicalCluster:
        """Poll the store until a live cluster called ``name`` exists."""
        deadline = time.monotonic() + timeout
        while True:
            match = [c for c in self.store.logical_clusters.list() if c.name == name]
            if match:
                return match[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no cluster {name!r} appeared within {timeout} s")
            time.sleep(0.05)


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


@pytest.fixture
def live_api(tmp_path: Path) -> Iterator[LiveApi]:
    layout = MothershipLayout(tmp_path / "data")
    token = layout.ensure_token()
    store = Store.in_data_dir(layout.root)
    store.migrate()
    sock = _free_socket()
    server = uvicorn.Server(uvicorn.Config(create_app(store, token), log_level="warning",
                                           access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="test-mothership-api",
                              daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            assert thread.is_alive(), "the API server thread died while starting"
            assert time.monotonic() < deadline, f"the API did not start within {START_TIMEOUT_S} s"
            time.sleep(0.02)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        write_json(layout.endpoint_file, {"url": url})
        yield LiveApi(url, token, store, layout.data_dir)
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT_S)
        sock.close()
        store.close()
    assert not thread.is_alive(), f"the API server thread did not stop within {STOP_TIMEOUT_S} s"


Invoke = Callable[..., Result]


@pytest.fixture
def streamplane() -> Invoke:
    """Run ``streamplane ARGS...`` in-process; ``env`` adds environment variables."""

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        clean: dict[str, str | None] = dict.fromkeys(CLI_ENV_VARS)
        return CliRunner().invoke(cli, list(args), env={**clean, **(env or {})}, catch_exceptions=False)

    return invoke


def one_error_line(result: Result) -> str:
    """The CLI failed, and said why in exactly one line on stderr."""
    assert result.exit_code != 0, result.output
    *progress, last = result.stderr.splitlines()
    assert last.startswith("error: "), result.stderr
    assert not any(line.startswith("error: ") for line in progress), result.stderr
    return last.removeprefix("error: ")


def only_error(result: Result) -> str:
    """The CLI failed with one stderr line and nothing else."""
    message = one_error_line(result)
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stdout == ""
    return message
