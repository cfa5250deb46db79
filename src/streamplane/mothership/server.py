"""The mothership process: REST API and reconciler on one event loop."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from streamplane.channel import ChannelConfig, DesiredPublisher, StatusReader, ensure_topics
from streamplane.channel.registry import SatelliteDirectory
from streamplane.credentials.tls import TlsSettings
from streamplane.files import read_json, write_json, write_private
from streamplane.loops.balancer.detector import BalanceSettings
from streamplane.loops.balancer.executor_state import ExecutorConfig
from streamplane.loops.balancer.loop import BalancingService
from streamplane.mothership.access import TenantAccess
from streamplane.mothership.api import create_app
from streamplane.mothership.balancer_source import StoreBalancerSource
from streamplane.mothership.gateways import GatewaySupervisor
from streamplane.mothership.reconciler import Reconciler
from streamplane.mothership.scheduler import SchedulerSettings
from streamplane.mothership.store import Store
from streamplane.proc.daemon import exclusive, holder_pid
from streamplane.settings import BROKER_HEAP_MB, REPLICATION_THROTTLE_BYTES_PER_S

log = logging.getLogger(__name__)

CATCH_UP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class MothershipLayout:
    """``<data dir>/mothership/``: store, lock, pid, the API address; the admin token and
    channel config sit in the data dir itself, where the CLI finds them."""

    data_dir: Path

    @property
    def root(self) -> Path:
        return self.data_dir / "mothership"

    @property
    def lock_file(self) -> Path:
        return self.root / "mothership.lock"

    @property
    def pid_file(self) -> Path:
        return self.root / "mothership.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "mothership.log"

    @property
    def endpoint_file(self) -> Path:
        return self.data_dir / "api.json"

    @property
    def token_file(self) -> Path:
        return self.data_dir / "admin-token"

    @property
    def channel_file(self) -> Path:
        return self.data_dir / "channel.json"

    @property
    def gateway_tls_file(self) -> Path:
        """The gateways' TLS files as last given: a restart without the flags keeps TLS on."""
        return self.root / "gateway-tls.json"

    def recorded_gateway_tls(self) -> TlsSettings | None:
        """The TLS settings the gateways were last given, or None (plain TCP)."""
        try:
            data = read_json(self.gateway_tls_file)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise GatewayTlsRecordError(f"cannot read {self.gateway_tls_file}: {exc}") from None
        try:
            return TlsSettings.model_validate(data)
        except ValueError as exc:
            raise GatewayTlsRecordError(f"{self.gateway_tls_file} is not a TLS setting: {exc}") from None

    def record_gateway_tls(self, tls: TlsSettings | None) -> None:
        """Remember the gateways' TLS files (None: plain TCP from now on)."""
        if tls is None:
            self.gateway_tls_file.unlink(missing_ok=True)
            return
        self.root.mkdir(parents=True, exist_ok=True)
        write_json(self.gateway_tls_file, tls.model_dump(mode="json"))

    def ensure_token(self) -> str:
        if not self.token_file.exists():
            write_private(self.token_file, secrets.token_urlsafe(32) + "\n")
        return self.token_file.read_text().strip()

    def api_url(self) -> str | None:
        try:
            data = read_json(self.endpoint_file)
        except (OSError, ValueError):
            return None
        url = data.get("url") if isinstance(data, dict) else None
        return url if isinstance(url, str) else None

    def pid(self) -> int | None:
        return holder_pid(self.lock_file, self.pid_file)


class GatewayTlsRecordError(Exception):
    """The recorded gateway TLS settings cannot be read."""


@dataclass(frozen=True)
class MothershipSettings:
    data_dir: Path
    db_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 0
    broker_heap_mb: int = BROKER_HEAP_MB
    #: per broker, while the balancer moves partitions: client traffic keeps priority
    replication_throttle_bytes_per_s: int = REPLICATION_THROTTLE_BYTES_PER_S
    #: client-side TLS of the gateways in front of shared clusters; None: plain TCP
    gateway_tls: TlsSettings | None = None


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _listen_again(layout: MothershipLayout, host: str, port: int) -> socket.socket:
    """Listen where the API listened before, if that port is free: clients keep its URL."""
    previous = layout.api_url()
    if port == 0 and previous:
        try:
            return _listen(host, int(previous.rsplit(":", 1)[1]))
        except (OSError, ValueError):
            pass
    return _listen(host, port)


async def serve(settings: MothershipSettings, stop: asyncio.Event) -> None:
    layout = MothershipLayout(settings.data_dir)
    token = layout.ensure_token()
    store = Store.in_data_dir(layout.root, url=settings.db_url)
    said = await asyncio.to_thread(store.migrate)
    log.info("state store %s: %s", store.url, said)
    channel = ChannelConfig.load(layout.channel_file)
    for line in await asyncio.to_thread(ensure_topics, channel):
        log.info("%s", line)
    publisher = DesiredPublisher(channel)
    statuses = StatusReader(channel)
    directory = SatelliteDirectory(channel)
    statuses.start()
    directory.start()
    balancing = BalancingService(StoreBalancerSource(store, statuses), layout.root / "balancer", BalanceSettings(
        executor=ExecutorConfig(throttle_bytes_per_s=settings.replication_throttle_bytes_per_s)))
    # gateways outlive the mothership (see gateways.py); `streamplane down` stops them
    gateways = GatewaySupervisor(store, layout.root, store_url=settings.db_url,
                                 tls=settings.gateway_tls)
    tenants = TenantAccess(store, gateways.bootstrap)
    scheduling = SchedulerSettings(broker_heap_mb=settings.broker_heap_mb)
    reconciler = Reconciler(
        store, publisher, statuses, directory,
        settings=scheduling,
        clean_tenant=tenants.clean, provision_tenant=tenants.provision,
        balancing=balancing)
    sock = _listen_again(layout, settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    loop = asyncio.get_running_loop()

    def changed() -> None:
        loop.call_soon_threadsafe(reconciler.wake)

    app = create_app(store, token, changed=changed, balancing=balancing, gateways=gateways,
                     statuses=statuses, directory=directory,
                     satellite_max_age_s=scheduling.satellite_max_age_s)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning",
                                           access_log=False, lifespan="off"))
    api = asyncio.create_task(server.serve(sockets=[sock]))
    url = f"http://{host}:{port}"
    write_json(layout.endpoint_file, {"url": url, "pid": os.getpid(), "started_at": time.time()})
    log.info("mothership API listening on %s", url)
    try:
        await statuses.wait_caught_up(CATCH_UP_TIMEOUT_S)
        reconciling = asyncio.create_task(reconciler.run(stop))
        balancing_task = asyncio.create_task(balancing.run(stop))
        supervising = asyncio.create_task(gateways.run(stop))
        await stop.wait()
        await reconciling
        await supervising
        await balancing_task
    finally:
        server.should_exit = True
        await api
        await publisher.close()
        await statuses.close()
        await directory.close()
        store.close()
        log.info("mothership stopped")


def run(settings: MothershipSettings) -> None:
    layout = MothershipLayout(settings.data_dir)
    with exclusive(layout.lock_file, layout.pid_file, "mothership"):
        layout.record_gateway_tls(settings.gateway_tls)  # only once this one runs

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await serve(settings, stop)

        asyncio.run(main())

