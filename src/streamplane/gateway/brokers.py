"""The gateway's listeners: one per broker of the physical cluster, opened as brokers appear.

Clients learn broker addresses only from the gateway (Metadata, FindCoordinator,
DescribeCluster, leader hints in Produce and Fetch), and every one of those addresses is
a listener here that forwards to that broker. Brokers are learnt from Metadata: a new
node id gets a listener before the response naming it reaches the client; a node id that
stops being listed is closed after a grace period (a restarting broker drops out of
Metadata for a moment), so brokers come and go without any client reconfiguration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: called for every accepted client connection, with the node id it is for
Accept = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]
#: called when a broker's listener closes, to end that broker's client connections
Removed = Callable[[int], None]


@dataclass(frozen=True)
class BrokerAddress:
    node_id: int
    host: str
    port: int
    rack: str | None = None


@dataclass
class _Listener:
    upstream: BrokerAddress
    server: asyncio.Server | None
    port: int
    removal: asyncio.TimerHandle | None = None


class BrokerListeners:
    """node id -> (the broker's real address, the gateway's listener for it)."""

    def __init__(self, bind_host: str, advertised_host: str, accept: Accept, removed: Removed,
                 *, ports: Mapping[int, int] | None = None, port_base: int | None = None,
                 removal_grace_s: float = 30.0, tls: ssl.SSLContext | None = None,
                 tls_handshake_timeout_s: float | None = None) -> None:
        self._bind_host = bind_host
        self._advertised_host = advertised_host
        self._accept = accept
        self._removed = removed
        self._ports = dict(ports or {})
        self._port_base = port_base
        self._grace = removal_grace_s
        self._tls = tls
        self._tls_timeout = tls_handshake_timeout_s if tls is not None else None
        self._listeners: dict[int, _Listener] = {}
        #: ports handed out before, reused when a broker comes back
        self._remembered: dict[int, int] = {}
        self._lock = asyncio.Lock()
        self._closed = False

    # ---- queries -----------------------------------------------------------------------

    def endpoint(self, node_id: int) -> tuple[str, int] | None:
        listener = self._listeners.get(node_id)
        if listener is None or listener.server is None:
            return None
        return self._advertised_host, listener.port

    def upstream(self, node_id: int) -> BrokerAddress | None:
        listener = self._listeners.get(node_id)
        return listener.upstream if listener is not None else None

    def upstreams(self) -> list[BrokerAddress]:
        return [lst.upstream for lst in self._listeners.values() if lst.removal is None]

    def ports(self) -> dict[int, int]:
        """node id -> listening port, for recording and for tests."""
        return {n: lst.port for n, lst in sorted(self._listeners.items()) if lst.server is not None}

    # ---- changes -----------------------------------------------------------------------

    async def sync(self, brokers: Iterable[BrokerAddress]) -> None:
        """``brokers`` is the whole cluster (a Metadata response): open what is new,
        schedule the removal of what is missing."""
        listed = {b.node_id: b for b in brokers}
        if not listed:
            return  # an answer without brokers says nothing about who left
        for broker in listed.values():
            await self.ensure(broker)
        for node_id, listener in self._listeners.items():
            if node_id not in listed and listener.removal is None:
                loop = asyncio.get_running_loop()
                listener.removal = loop.call_later(self._grace, self._remove, node_id)
                log.info("broker %d is no longer listed; closing its listener in %g s",
                         node_id, self._grace)

    async def ensure(self, broker: BrokerAddress) -> tuple[str, int]:
        """The gateway endpoint for ``broker``, opening its listener if needed."""
        listener = self._listeners.get(broker.node_id)
        if listener is not None and listener.server is not None:
            self._refresh(listener, broker)
            return self._advertised_host, listener.port
        async with self._lock:
            listener = self._listeners.get(broker.node_id)
            if listener is None or listener.server is None:
                listener = await self._open(broker)
                self._listeners[broker.node_id] = listener
            else:
                self._refresh(listener, broker)
        return self._advertised_host, listener.port

    def _refresh(self, listener: _Listener, broker: BrokerAddress) -> None:
        if listener.removal is not None:
            listener.removal.cancel()
            listener.removal = None
            log.info("broker %d is listed again; keeping its listener", broker.node_id)
        if (listener.upstream.host, listener.upstream.port) != (broker.host, broker.port):
            log.info("broker %d moved from %s:%d to %s:%d", broker.node_id,
                     listener.upstream.host, listener.upstream.port, broker.host, broker.port)
        listener.upstream = broker

    async def _open(self, broker: BrokerAddress) -> _Listener:
        if self._closed:
            raise RuntimeError("the gateway is stopping")
        node_id = broker.node_id
        wanted = self._ports.get(node_id) or self._remembered.get(node_id) or (
            self._port_base + node_id if self._port_base is not None else 0)

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._accept(reader, writer, node_id)

        try:
            server = await asyncio.start_server(accept, self._bind_host, wanted, ssl=self._tls,
                                                ssl_handshake_timeout=self._tls_timeout)
        except OSError:
            if wanted == 0 or node_id in self._ports:
                raise
            log.warning("port %d for broker %d is taken; using another one", wanted, node_id)
            server = await asyncio.start_server(accept, self._bind_host, 0, ssl=self._tls,
                                                ssl_handshake_timeout=self._tls_timeout)
        port = int(server.sockets[0].getsockname()[1])
        self._remembered[node_id] = port
        log.info("broker %d (%s:%d) is reachable at %s:%d", node_id, broker.host, broker.port,
                 self._advertised_host, port)
        return _Listener(broker, server, port)

    def _remove(self, node_id: int) -> None:
        listener = self._listeners.pop(node_id, None)
        if listener is None:
            return
        if listener.server is not None:
            listener.server.close()
        log.info("closed the listener of broker %d", node_id)
        self._removed(node_id)

    async def close(self) -> None:
        self._closed = True
        servers = []
        for listener in self._listeners.values():
            if listener.removal is not None:
                listener.removal.cancel()
            if listener.server is not None:
                listener.server.close()
                servers.append(listener.server)
        self._listeners.clear()
        for server in servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)
