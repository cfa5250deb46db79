"""One gateway process per shared physical cluster, kept running by the mothership.

A gateway is data plane, like the brokers a satellite runs: it is started in its own
session and outlives the mothership, so restarting or upgrading the control plane drops
no client connection (the gateway reads API keys from the store itself). A mothership
that starts adopts the gateways already running (pid and start time in ``gateway.json``,
or the state-file path on their command line), restarts one that dies with backoff, and
stops those whose cluster is gone. ``streamplane down`` stops them all (``stop_gateways``).

Clients keep one address: a restarted gateway listens on the bootstrap port it had, when
that port is free.

With ``tls`` set, every gateway serves TLS from those certificate files (clients use
SASL_SSL). The gateways watch the files; ``reload_tls`` asks them to load them at once
(SIGHUP). A gateway running with other TLS settings than the mothership's is restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import shutil
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamplane.credentials.tls import TlsSettings
from streamplane.loops.runner import run_loop
from streamplane.models.status import ClusterState
from streamplane.mothership.store import PhysicalCluster, PhysicalClusterKind, Store
from streamplane.proc import process
from streamplane.proc.process import ProcessHandle
from streamplane.proc.supervisor import Backoff, Supervisor

log = logging.getLogger(__name__)

#: what the mothership runs for each shared cluster
GATEWAY_MODULE = "streamplane.mothership.gateway_process"
#: what it ran before the gateway's store-backed key verifier moved to the mothership; such
#: gateways, still running across an upgrade, are adopted and stopped like the others
LEGACY_GATEWAY_MODULE = "streamplane.gateway"
#: the store URL goes to the gateway in its environment, never on its command line
STORE_URL_ENV = "STREAMPLANE_STORE_URL"
CYCLE_S = 1.0
#: a gateway that died is started again after 0.5 s, doubling to 30 s; one up for a minute
#: has recovered, and its next death is waited on for 0.5 s again
RESTART_BACKOFF = Backoff(first=0.5, maximum=30.0, stable_after=60.0)
STOP_GRACE_S = 10.0
LISTEN_HOST = "127.0.0.1"


def gateways_dir(mothership_root: Path) -> Path:
    """``<data dir>/mothership/gateways``: one directory per shared physical cluster."""
    return mothership_root / "gateways"


@dataclass(frozen=True)
class GatewayFiles:
    dir: Path

    @property
    def handle_file(self) -> Path:
        """Written by the mothership: pid, start time, upstream, last bootstrap."""
        return self.dir / "gateway.json"

    @property
    def state_file(self) -> Path:
        """Written by the gateway: its pid, bootstrap and broker ports."""
        return self.dir / "state.json"

    @property
    def log_file(self) -> Path:
        return self.dir / "gateway.log"

    def read_handle(self) -> dict[str, Any]:
        return _read(self.handle_file)

    def write_handle(self, data: dict[str, Any]) -> None:
        tmp = self.handle_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(self.handle_file)


@dataclass
class _Gateway:
    files: GatewayFiles
    upstream: str = ""
    bootstrap: str | None = None
    #: the TLS arguments it was started with ("" for none)
    tls: str = ""
    handle: ProcessHandle | None = None
    supervisor: Supervisor = field(default_factory=lambda: Supervisor(RESTART_BACKOFF))
    #: looked for a running gateway to adopt (once per mothership run)
    looked: bool = False


@dataclass
class GatewaySupervisor:
    """Keeps one ``python -m streamplane.gateway`` per live shared physical cluster."""

    store: Store
    #: the mothership's store directory (its SQLite file and secret key file)
    store_dir: Path
    store_url: str | None = None
    #: client-side TLS of every gateway; None: plain TCP (SASL_PLAINTEXT)
    tls: TlsSettings | None = None
    python: str = sys.executable
    _gateways: dict[str, _Gateway] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        # known at once after a restart, so clusters keep their address while adopting
        root = gateways_dir(self.store_dir)
        for path in sorted(root.iterdir()) if root.is_dir() else []:
            handle = GatewayFiles(path).read_handle()
            self._gateways[path.name] = _Gateway(
                GatewayFiles(path), upstream=str(handle.get("upstream", "")),
                bootstrap=handle.get("bootstrap") or None, tls=str(handle.get("tls", "")))

    @property
    def security_protocol(self) -> str:
        """What tenants' clients set as ``security.protocol``."""
        return "SASL_SSL" if self.tls is not None else "SASL_PLAINTEXT"

    def _tls_argv(self) -> list[str]:
        if self.tls is None:
            return []
        argv = ["--tls-cert", str(self.tls.cert_file), "--tls-key", str(self.tls.key_file)]
        if self.tls.ca_file is not None:
            argv += ["--tls-client-ca", str(self.tls.ca_file)]
        return argv

    def reload_tls(self) -> list[dict[str, Any]]:
        """Ask every running gateway to load its certificate files now (SIGHUP); what each
        reports serving a moment later is in ``certificates``."""
        if self.tls is None:
            raise ValueError("the gateways do not serve TLS: the mothership runs without "
                             "--gateway-tls-cert/--gateway-tls-key")
        asked = []
        with self._lock:
            gateways = [(pc_id, gw.handle) for pc_id, gw in self._gateways.items()]
        for pc_id, handle in gateways:
            if handle is not None and process.is_alive(handle):
                os.kill(handle.pid, signal.SIGHUP)
                asked.append({"physical_cluster": pc_id, "pid": handle.pid})
        return asked

    def certificates(self) -> list[dict[str, Any]]:
        """Per gateway: its bootstrap, security protocol and the certificate it serves."""
        with self._lock:
            gateways = [(pc_id, gw.files, gw.bootstrap) for pc_id, gw in self._gateways.items()]
        out = []
        for pc_id, files, bootstrap in sorted(gateways, key=lambda g: g[0]):
            state = _read(files.state_file)
            out.append({"physical_cluster": pc_id, "bootstrap": bootstrap,
                        "security_protocol": state.get("security_protocol"),
                        "certificate": state.get("certificate")})
        return out

    def bootstrap(self, physical_cluster_id: str) -> str | None:
        """The address clients of the cluster's tenants connect to; None before its
        gateway first listened. Safe to call from any thread."""
        with self._lock:
            gw = self._gateways.get(physical_cluster_id)
            return gw.bootstrap if gw is not None else None

    def pid(self, physical_cluster_id: str) -> int | None:
        """The process id of the cluster's gateway, if one runs."""
        with self._lock:
            gw = self._gateways.get(physical_cluster_id)
            return gw.handle.pid if gw is not None and gw.handle is not None else None

    async def run(self, stop: asyncio.Event) -> None:
        async def cycle() -> str:
            return await asyncio.to_thread(self.run_cycle)

        await run_loop(cycle, stop, CYCLE_S, log, "gateway supervisor")

    def run_cycle(self) -> str:
        """Start, watch, restart and stop gateways; a sentence about what changed."""
        said: list[str] = []
        pcs = {pc.id: pc for pc in self.store.physical_clusters.list()
               if pc.kind == PhysicalClusterKind.SHARED and not pc.deleting}
        for pc_id in sorted(set(self._gateways) - set(pcs)):
            said.append(self._remove(pc_id))
        for pc in pcs.values():
            sentence = self._keep(pc)
            if sentence:
                said.append(sentence)
        return "; ".join(said)

    # ---- one gateway --------------------------------------------------------------

    def _keep(self, pc: PhysicalCluster) -> str:
        status = pc.observed_status
        healthy = status is not None and status.status == ClusterState.HEALTHY and bool(status.bootstrap)
        gw = self._gateways.get(pc.id)
        if gw is None:
            if not healthy:
                return ""  # the first gateway waits for a healthy cluster
            gw = _Gateway(GatewayFiles(gateways_dir(self.store_dir) / pc.id))
            with self._lock:
                self._gateways[pc.id] = gw
        upstream = status.bootstrap if healthy and status is not None and status.bootstrap else gw.upstream
        if gw.handle is None and not gw.looked:
            gw.looked = True
            gw.handle = self._adopt(gw)
            if gw.handle is not None:
                gw.supervisor.started(time.monotonic())
                self._learn_bootstrap(gw)
                return f"adopted the gateway of {pc.id} (pid {gw.handle.pid}) at {gw.bootstrap}"
        if gw.handle is not None and not process.is_alive(gw.handle):
            return self._died(pc.id, gw)
        if gw.handle is not None:
            said = self._learn_bootstrap(gw)
            if gw.tls != " ".join(self._tls_argv()):
                self._terminate(gw)
                return f"the gateway of {pc.id} ran with other TLS settings: restarting it; " \
                       + self._start(pc.id, gw, upstream or gw.upstream)
            if _moved(gw.upstream, upstream):
                self._terminate(gw)
                return f"the brokers of {pc.id} moved to {upstream}: restarting its gateway; " \
                       + self._start(pc.id, gw, upstream)
            gw.supervisor.running(time.monotonic())
            return said
        if not gw.supervisor.due(time.monotonic()) or not upstream:
            return ""
        return self._start(pc.id, gw, upstream)

    def _adopt(self, gw: _Gateway) -> ProcessHandle | None:
        data = gw.files.read_handle()
        with contextlib.suppress(KeyError, TypeError, ValueError):
            handle = ProcessHandle.from_json(data)
            if process.is_alive(handle):
                return handle
        # started, but killed before it recorded its handle: find it by its state file
        found = _find_gateways(str(gw.files.state_file))
        return found[0] if found else None

    def _start(self, pc_id: str, gw: _Gateway, upstream: str) -> str:
        gw.files.dir.mkdir(parents=True, exist_ok=True)
        gw.files.state_file.unlink(missing_ok=True)
        port = _free_port_or_any(gw.bootstrap)
        argv = [self.python, "-m", GATEWAY_MODULE, "--upstream", upstream,
                "--data-dir", str(self.store_dir), "--physical-cluster", pc_id,
                "--state-file", str(gw.files.state_file), "--listen-host", LISTEN_HOST,
                "--bootstrap-port", str(port), *self._tls_argv()]
        env = dict(os.environ)
        if self.store_url:
            env[STORE_URL_ENV] = self.store_url
        gw.handle = process.spawn(argv, gw.files.log_file, cwd=gw.files.dir, env=env)
        gw.upstream = upstream
        gw.supervisor.started(time.monotonic())
        gw.tls = " ".join(self._tls_argv())
        self._save(gw)
        where = f"port {port}" if port else "a free port"
        return f"started the gateway of {pc_id} (pid {gw.handle.pid}) on {where}, upstream {upstream}"

    def _died(self, pc_id: str, gw: _Gateway) -> str:
        assert gw.handle is not None
        code = process.reap(gw.handle.pid)
        wait = gw.supervisor.exited(time.monotonic(), code)
        gw.handle = None
        exit_said = f"exit code {code}" if code is not None else "exit code unknown"
        return (f"the gateway of {pc_id} stopped ({exit_said}, see {gw.files.log_file}); "
                f"restarting it in {wait:g} s")

    def _learn_bootstrap(self, gw: _Gateway) -> str:
        state = _read(gw.files.state_file)
        bootstrap = state.get("bootstrap")
        if gw.handle is None or state.get("pid") != gw.handle.pid or not isinstance(bootstrap, str):
            return ""
        if bootstrap == gw.bootstrap:
            return ""
        with self._lock:
            gw.bootstrap = bootstrap
        self._save(gw)
        return f"gateway of {gw.files.dir.name} listening at {bootstrap}"

    def _save(self, gw: _Gateway) -> None:
        data: dict[str, Any] = {"upstream": gw.upstream, "bootstrap": gw.bootstrap, "tls": gw.tls}
        if gw.handle is not None:
            data.update(gw.handle.to_json())
        gw.files.write_handle(data)

    def _terminate(self, gw: _Gateway) -> None:
        if gw.handle is not None:
            asyncio.run(process.terminate(gw.handle, STOP_GRACE_S))
            gw.handle = None

    def _remove(self, pc_id: str) -> str:
        gw = self._gateways[pc_id]
        if gw.handle is None:
            gw.handle = self._adopt(gw)
        self._terminate(gw)
        with self._lock:
            del self._gateways[pc_id]
        shutil.rmtree(gw.files.dir, ignore_errors=True)
        return f"stopped the gateway of {pc_id}: the cluster is gone"


def stop_gateways(mothership_root: Path) -> list[str]:
    """Stop every gateway of this data directory (``streamplane down``); the mothership
    leaves them running when it stops."""
    handles = _find_gateways(str(gateways_dir(mothership_root)))

    async def terminate() -> list[int | None]:
        return list(await asyncio.gather(*(process.terminate(h, STOP_GRACE_S) for h in handles)))

    codes = asyncio.run(terminate()) if handles else []
    return [f"stopped gateway process {h.pid} (exit {code})" for h, code in zip(handles, codes, strict=True)]


def _moved(before: str, now: str) -> bool:
    """The upstream changed so much that the gateway cannot find the brokers any more (it
    follows brokers through metadata, so one remaining address is enough)."""
    if not before or not now:
        return False
    return not set(before.split(",")) & set(now.split(","))


def _free_port_or_any(bootstrap: str | None) -> int:
    """The port of ``bootstrap`` if nothing listens there now, else 0 (any free port)."""
    if not bootstrap:
        return 0
    try:
        port = int(bootstrap.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return 0
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LISTEN_HOST, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                log.warning("cannot check port %d: %s", port, exc)
            return 0
    return port


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _find_gateways(marker: str) -> list[ProcessHandle]:
    return [*process.find_by_marker(marker, GATEWAY_MODULE), *process.find_by_marker(marker, LEGACY_GATEWAY_MODULE)]
