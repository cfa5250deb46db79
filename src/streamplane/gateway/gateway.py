"""``Gateway``: the Kafka-protocol front door of one shared physical cluster.

Clients of every basic/standard logical cluster on that physical cluster connect to the
gateway's bootstrap listener with an API key. Each sees a private Kafka cluster: its own
topics, groups and transactional ids without the tenant prefix, its logical cluster id
as the cluster id, and the gateway's listeners as the brokers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from streamplane.credentials.tls import CertificateInfo, TlsCertificates, TlsError
from streamplane.gateway.apis import UpstreamVersions
from streamplane.gateway.auth import Authenticator, KeyVerifier, TenantIdentity
from streamplane.gateway.brokers import BrokerListeners
from streamplane.gateway.config import GatewayConfig
from streamplane.gateway.limits import connection_refusal
from streamplane.gateway.namespace import TenantTopics
from streamplane.gateway.protocol import VersionRange
from streamplane.gateway.session import ClientSession
from streamplane.gateway.upstream import Address, SaltedPasswords, UpstreamConnection, UpstreamError, parse_address

log = logging.getLogger(__name__)


class Gateway:
    """Start with ``await start()`` (or ``async with``), stop with ``await stop()``."""

    def __init__(self, config: GatewayConfig, verifier: KeyVerifier) -> None:
        self.config = config
        self.verifier = verifier
        self.authenticator = Authenticator(verifier, cache_ttl_s=config.cache_ttl_s)
        self.salted = SaltedPasswords()
        #: makes up SCRAM salts for unknown keys, so key ids cannot be probed
        self.decoy_secret = secrets.token_bytes(32)
        #: the client-side TLS certificate, when the gateway serves TLS
        self.tls = TlsCertificates(config.tls) if config.tls is not None else None
        self.listeners = BrokerListeners(
            config.listen_host, config.advertised, self._accept, self._broker_removed,
            ports=config.broker_ports, port_base=config.broker_port_base,
            removal_grace_s=config.broker_removal_grace_s, **self._tls_listening())
        self._bootstrap_upstream = [parse_address(a) for a in config.upstream_bootstrap]
        self._versions = UpstreamVersions()
        self._versions_lock = asyncio.Lock()
        self._topics: dict[str, TenantTopics] = {}
        self._sessions: set[ClientSession] = set()
        self._by_key: dict[str, set[ClientSession]] = {}
        #: logged-in sessions per logical cluster, for its connection limit
        self._by_tenant: dict[str, set[ClientSession]] = {}
        self._tenant_of: dict[ClientSession, str] = {}
        self._server: asyncio.Server | None = None
        self._recheck: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Open the bootstrap listener and start re-checking keys. The brokers are asked
        for their API versions now if they answer, otherwise at the first client."""
        if self.tls is not None:
            try:
                await self.tls.start()
            except TlsError as exc:
                raise TlsError(f"the gateway cannot serve TLS: {exc}") from exc
        try:
            await self._learn_versions()
        except UpstreamError as exc:
            log.warning("the cluster does not answer yet (%s); the gateway starts anyway", exc)

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._accept(reader, writer, None)

        tls = self._tls_listening()
        self._server = await asyncio.start_server(
            accept, self.config.listen_host, self.config.bootstrap_port,
            ssl=tls["tls"], ssl_handshake_timeout=tls["tls_handshake_timeout_s"])
        self._recheck = asyncio.create_task(self._recheck_loop(), name="gateway key re-check")
        log.info("gateway listening at %s for cluster %s", self.bootstrap,
                 ",".join(self.config.upstream_bootstrap))

    async def stop(self) -> None:
        if self.tls is not None:
            await self.tls.stop()
        if self._recheck is not None:
            self._recheck.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recheck
            self._recheck = None
        if self._server is not None:
            self._server.close()
        await self.listeners.close()
        for session in list(self._sessions):
            session.close("the gateway is stopping")
        handlers = list(self._handlers)
        if handlers:
            await asyncio.wait(handlers, timeout=10)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None
        log.info("gateway stopped")

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    @property
    def bootstrap(self) -> str:
        """``host:port`` that clients put in bootstrap.servers."""
        if self._server is None:
            raise RuntimeError("the gateway is not started")
        port = int(self._server.sockets[0].getsockname()[1])
        return f"{self.config.advertised}:{port}"

    def broker_ports(self) -> dict[int, int]:
        return self.listeners.ports()

    # ---- TLS -------------------------------------------------------------------------

    async def reload_tls(self) -> CertificateInfo:
        """Load the certificate files again now (they are also watched); new connections
        get the certificate returned, open ones keep theirs. Raises TlsError, keeping the
        certificate in service, if the files do not work."""
        if self.tls is None:
            raise TlsError("this gateway does not serve TLS (no tls settings)")
        await self.tls.reload()
        assert self.tls.info is not None
        return self.tls.info

    def _tls_listening(self) -> dict[str, Any]:
        """The TLS arguments for a listener: a context that follows certificate reloads."""
        if self.tls is None:
            return {"tls": None, "tls_handshake_timeout_s": None}
        return {"tls": self.tls.listener_context,
                "tls_handshake_timeout_s": self.tls.settings.handshake_timeout_s}

    # ---- keys ------------------------------------------------------------------------

    def revoke(self, key: str) -> int:
        """Refuse ``key`` from now on and close its connections; how many were closed."""
        self.authenticator.revoke(key)
        return self._disconnect(key, "its API key was revoked")

    async def recheck(self) -> set[str]:
        """Ask the verifier about every key in use now; close the connections of those
        that are no longer live. Runs every ``recheck_interval_s`` by itself."""
        dead = await self.authenticator.dead_keys(list(self._by_key),
                                                  timeout=self.config.recheck_interval_s * 2)
        for key in dead:
            closed = self._disconnect(key, "its API key is no longer valid")
            if closed:
                log.info("API key %s is no longer valid: closed %d connection(s)", key, closed)
        return dead

    def connections(self, key: str | None = None) -> int:
        """Open client connections (logged in with ``key``, or all)."""
        if key is None:
            return len(self._sessions)
        return len(self._by_key.get(key, ()))

    def _disconnect(self, key: str, reason: str) -> int:
        sessions = list(self._by_key.get(key, ()))
        for session in sessions:
            session.close(reason)
        return len(sessions)

    async def _recheck_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.recheck_interval_s)
            try:
                await self.recheck()
            except Exception:
                log.exception("re-checking API keys failed")

    # ---- what sessions need (SessionHost) ---------------------------------------------

    def tenant_topics(self, prefix: str) -> TenantTopics:
        return self._topics.setdefault(prefix, TenantTopics())

    def upstream_addresses(self, node_id: int | None) -> list[Address]:
        if node_id is not None:
            broker = self.listeners.upstream(node_id)
            return [(broker.host, broker.port)] if broker is not None else []
        # spread bootstrap connections over the brokers; the configured list is the fallback
        known = [(b.host, b.port) for b in self.listeners.upstreams()]
        rest = [a for a in self._bootstrap_upstream if a not in known]
        return random.sample(known, len(known)) + random.sample(rest, len(rest))

    async def advertised(self) -> Mapping[int, VersionRange]:
        if not self._versions.known:
            await self._learn_versions()
        return self._versions.advertised()

    def record_versions(self, address: Address, versions: Mapping[int, VersionRange]) -> None:
        self._versions.record(address, versions)
        self._versions.forget_except({(b.host, b.port) for b in self.listeners.upstreams()}
                                     | {address})

    def admit(self, session: ClientSession, identity: TenantIdentity) -> str | None:
        """Count ``session`` against its logical cluster's connection limit (until
        ``detach``), or say why it is refused."""
        sessions = self._by_tenant.setdefault(identity.cluster_id, set())
        refused = connection_refusal(identity.cluster_id, len(sessions), identity.limits)
        if refused is None:
            sessions.add(session)
            self._tenant_of[session] = identity.cluster_id
        elif not sessions:
            del self._by_tenant[identity.cluster_id]
        return refused

    def tenant_connections(self, cluster_id: str) -> int:
        """Client connections of logical cluster ``cluster_id`` (logged in, or logging in)."""
        return len(self._by_tenant.get(cluster_id, ()))

    def attach(self, session: ClientSession) -> None:
        key = session.key
        if key is None:
            return
        if self.authenticator.is_revoked(key):
            session.close("its API key was revoked")
            return
        self._by_key.setdefault(key, set()).add(session)

    def detach(self, session: ClientSession) -> None:
        cluster_id = self._tenant_of.pop(session, None)
        if cluster_id is not None:
            self._by_tenant[cluster_id].discard(session)
            if not self._by_tenant[cluster_id]:
                del self._by_tenant[cluster_id]
        key = session.key
        if key is not None and key in self._by_key:
            self._by_key[key].discard(session)
            if not self._by_key[key]:
                del self._by_key[key]

    # ---- plumbing --------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      node_id: int | None) -> None:
        session = ClientSession(self, reader, writer, node_id)
        self._sessions.add(session)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            await session.run()
        finally:
            self._sessions.discard(session)
            if task is not None:
                self._handlers.discard(task)

    def _broker_removed(self, node_id: int) -> None:
        for session in list(self._sessions):
            if session.node_id == node_id:
                session.close(f"broker {node_id} left the cluster")

    async def _learn_versions(self) -> None:
        """Ask a broker for its API versions (allowed before login), and learn the brokers."""
        async with self._versions_lock:
            if self._versions.known:
                return
            last: UpstreamError | None = None
            for address in self.upstream_addresses(None):
                try:
                    conn = await UpstreamConnection.open(address, self.config.upstream_timeout_s)
                except UpstreamError as exc:
                    last = exc
                    continue
                try:
                    self._versions.record(address, conn.versions)
                finally:
                    await conn.close()
                return
            raise last or UpstreamError("no upstream bootstrap address")
