"""One client connection: SASL login with an API key, then requests forwarded as the tenant.

Each client connection gets its own connection to the broker behind the listener it came
in on, logged in as the tenant's principal. Requests are read, rewritten and written to
the broker strictly in order (an idempotent producer depends on it); their responses are
rewritten concurrently but written back in request order, as Kafka promises.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from kafka.protocol.api_key import ApiKey
from kafka.protocol.metadata import MetadataRequest
from kafka.protocol.sasl import SaslAuthenticateResponse, SaslHandshakeResponse

from streamplane.gateway import limits
from streamplane.gateway.apis import FORWARDED, api_versions_response
from streamplane.gateway.auth import Authenticator, TenantIdentity
from streamplane.gateway.brokers import BrokerListeners
from streamplane.gateway.config import GatewayConfig
from streamplane.gateway.namespace import TenantTopics
from streamplane.gateway.protocol import (
    APIS,
    ErrorCode,
    ProtocolError,
    Request,
    VersionRange,
    decode_response,
    encode_response,
    frame,
    parse_request,
    read_frame,
)
from streamplane.gateway.rewrite import Plan, TenantRewriter, refusal
from streamplane.gateway.sasl import MechanismServer, SaslFailure, mechanism_server
from streamplane.gateway.upstream import (
    WRITE_BUFFER_BYTES,
    Address,
    SaltedPasswords,
    UpstreamAuthError,
    UpstreamConnection,
    UpstreamError,
)

log = logging.getLogger(__name__)

#: how long a closing connection may take to hand over its last responses
FLUSH_TIMEOUT_S = 5.0
UPSTREAM_LOGIN_FAILED = ("Authentication failed: the gateway could not log in to the Kafka "
                         "cluster for this API key; ask the operator to check its provisioning")


class SessionHost(Protocol):
    """What a session needs from the gateway that runs it."""

    config: GatewayConfig
    authenticator: Authenticator
    listeners: BrokerListeners
    salted: SaltedPasswords
    decoy_secret: bytes

    def tenant_topics(self, prefix: str) -> TenantTopics: ...
    def upstream_addresses(self, node_id: int | None) -> list[Address]: ...
    async def advertised(self) -> Mapping[int, VersionRange]: ...
    def record_versions(self, address: Address, versions: Mapping[int, VersionRange]) -> None: ...
    def admit(self, session: ClientSession, identity: TenantIdentity) -> str | None: ...
    def attach(self, session: ClientSession) -> None: ...
    def detach(self, session: ClientSession) -> None: ...


class _Done(Exception):
    """End the connection once the responses already queued are written."""


class ClientSession:
    def __init__(self, host: SessionHost, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, node_id: int | None) -> None:
        self.host = host
        self.node_id = node_id
        self.peer = str(writer.get_extra_info("peername"))
        self.identity: TenantIdentity | None = None
        self.upstream: UpstreamConnection | None = None
        #: reached before the client is answered, logged in once the client has
        self._opened: UpstreamConnection | None = None
        self._reader = reader
        self._writer = writer
        writer.transport.set_write_buffer_limits(high=WRITE_BUFFER_BYTES)
        self._config = host.config
        self._responses: asyncio.Queue[asyncio.Future[bytes] | None] = asyncio.Queue(
            self._config.max_in_flight)
        self._rewriter: TenantRewriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._raw_sasl = False
        self.close_reason: str | None = None

    @property
    def key(self) -> str | None:
        return self.identity.key if self.identity is not None else None

    def __repr__(self) -> str:
        where = "bootstrap" if self.node_id is None else f"broker {self.node_id}"
        return f"<client {self.peer} via {where}, key {self.key or '(not logged in)'}>"

    # ---- lifecycle -------------------------------------------------------------------

    async def run(self) -> None:
        self._task = asyncio.current_task()
        writer_task = asyncio.create_task(self._write_responses(), name=f"writer {self.peer}")
        flush = True
        try:
            await self._reach_upstream()
            if await self._login_in_time():
                self.host.attach(self)
                await self._serve()
        except _Done:
            pass
        except asyncio.CancelledError:
            flush = False
        except (asyncio.IncompleteReadError, ConnectionError):
            flush = False
        except (ProtocolError, UpstreamError) as exc:
            self.close_reason = self.close_reason or str(exc)
            log.info("closing %r: %s", self, exc)
        finally:
            self.host.detach(self)
            await self._end(writer_task, flush)

    async def _end(self, writer_task: asyncio.Task[None], flush: bool) -> None:
        for task in self._tasks:
            task.cancel()
        if flush:
            with contextlib.suppress(asyncio.QueueFull):
                self._responses.put_nowait(None)
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(writer_task), FLUSH_TIMEOUT_S)
        writer_task.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await writer_task
        if self.upstream is not None:
            await self.upstream.close()
        if self._opened is not None:
            await self._opened.close()
        self._writer.close()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(self._writer.wait_closed(), FLUSH_TIMEOUT_S)
        if self.close_reason:
            log.debug("%r closed: %s", self, self.close_reason)

    def close(self, reason: str) -> None:
        """End this connection now (revoked key, broker gone, gateway stopping)."""
        self.close_reason = reason
        if self._task is not None and not self._task.done():
            self._task.cancel()
        else:
            self._writer.close()

    async def _write_responses(self) -> None:
        try:
            while True:
                slot = await self._responses.get()
                if slot is None:
                    return
                data = await slot
                self._writer.write(data)
                await self._writer.drain()
        except (ConnectionError, OSError):
            self.close("the client went away")
        except (ProtocolError, UpstreamError) as exc:
            log.info("closing %r: %s", self, exc)
            self.close(str(exc))

    async def _queue(self, data: bytes) -> None:
        slot: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        slot.set_result(data)
        await self._responses.put(slot)

    async def _respond(self, request: Request, body: Any) -> None:
        await self._queue(encode_response(body, request.version, request.correlation_id))

    # ---- login -----------------------------------------------------------------------

    async def _login_in_time(self) -> bool:
        try:
            return await asyncio.wait_for(self._login(), self._config.auth_timeout_s)
        except TimeoutError:
            self.close_reason = f"did not log in within {self._config.auth_timeout_s:g} s"
            log.info("closing %r: %s", self, self.close_reason)
            return False

    async def _login(self) -> bool:
        """Answer ApiVersions and SASL until the client has logged in (True), or has
        failed to (False, after the failure response is queued)."""
        mechanism: MechanismServer | None = None
        while True:
            payload = await read_frame(self._reader, self._config.max_sasl_bytes)
            if self._raw_sasl:
                assert mechanism is not None
                return await self._raw_sasl_step(mechanism, payload)
            request = parse_request(payload)
            if request.api_key == ApiKey.ApiVersions:
                await self._api_versions(request)
            elif request.api_key == ApiKey.SaslHandshake and request.body is not None:
                mechanism = await self._handshake(request)
                if mechanism is None:
                    return False
            elif request.api_key == ApiKey.SaslAuthenticate and request.body is not None:
                if mechanism is None:
                    await self._respond(request, SaslAuthenticateResponse(
                        version=request.version, error_code=ErrorCode.ILLEGAL_SASL_STATE,
                        error_message="SaslHandshake must come first"))
                    return False
                done = await self._authenticate(request, mechanism)
                if done is not None:
                    return done
            else:
                log.info("closing %r: it sent %s before logging in", self, request.name)
                return False

    async def _handshake(self, request: Request) -> MechanismServer | None:
        offered = list(self._config.mechanisms)
        wanted = str(request.body.mechanism)
        if wanted not in offered:
            await self._respond(request, SaslHandshakeResponse(
                version=request.version, error_code=ErrorCode.UNSUPPORTED_SASL_MECHANISM,
                mechanisms=offered))
            return None
        await self._respond(request, SaslHandshakeResponse(
            version=request.version, error_code=ErrorCode.NONE, mechanisms=offered))
        # SaslHandshake v0: the SASL tokens follow as bare frames, without Kafka headers
        self._raw_sasl = request.version == 0
        return mechanism_server(wanted, self.host.authenticator, self.host.decoy_secret)

    async def _authenticate(self, request: Request, mechanism: MechanismServer) -> bool | None:
        """One SaslAuthenticate round: True once logged in, False on failure, None to go on."""
        def answer(error: int = ErrorCode.NONE, message: str | None = None,
                   token: bytes = b"") -> Any:
            return SaslAuthenticateResponse(version=request.version, error_code=error,
                                            error_message=message, auth_bytes=token,
                                            session_lifetime_ms=0)

        try:
            token = await mechanism.step(bytes(request.body.auth_bytes))
        except SaslFailure as exc:
            log.info("%r failed to log in: %s", self, exc)
            await self._respond(request, answer(ErrorCode.SASL_AUTHENTICATION_FAILED, str(exc)))
            return False
        if not mechanism.complete:
            await self._respond(request, answer(token=token))
            return None
        assert mechanism.identity is not None
        refused = self.host.admit(self, mechanism.identity)
        if refused is not None:
            log.info("%r refused: %s", self, refused)
            await self._respond(request, answer(ErrorCode.SASL_AUTHENTICATION_FAILED, refused))
            return False
        try:
            await self._connect_upstream(mechanism.identity)
        except UpstreamAuthError as exc:
            log.warning("%r: %s", self, exc)
            await self._respond(request, answer(ErrorCode.SASL_AUTHENTICATION_FAILED,
                                                UPSTREAM_LOGIN_FAILED))
            return False
        await self._respond(request, answer(token=token))
        return True

    async def _raw_sasl_step(self, mechanism: MechanismServer, token: bytes) -> bool:
        while True:
            try:
                out = await mechanism.step(token)
            except SaslFailure as exc:
                log.info("%r failed to log in: %s", self, exc)
                return False
            if mechanism.complete:
                assert mechanism.identity is not None
                refused = self.host.admit(self, mechanism.identity)
                if refused is not None:
                    log.info("%r refused: %s", self, refused)
                    return False
                try:
                    await self._connect_upstream(mechanism.identity)
                except UpstreamAuthError as exc:
                    log.warning("%r: %s", self, exc)
                    return False
                await self._queue(frame(out))
                return True
            await self._queue(frame(out))
            token = await read_frame(self._reader, self._config.max_sasl_bytes)

    async def _reach_upstream(self) -> None:
        """Connect to the broker before answering the client at all. While the broker is
        down the client's connection then closes before its first response, as the
        broker's own would; closed in the middle of SASL instead, clients report an
        authentication failure (librdkafka) or give up on the node (Java)."""
        addresses = self.host.upstream_addresses(self.node_id)
        if not addresses:
            raise UpstreamError(f"broker {self.node_id} is not part of the cluster any more")
        last: UpstreamError | None = None
        for address in addresses:
            try:
                self._opened = await UpstreamConnection.open(address, self._config.upstream_timeout_s)
                return
            except UpstreamError as exc:
                last = exc
        raise last or UpstreamError("no broker to connect to")

    async def _connect_upstream(self, identity: TenantIdentity) -> None:
        last: UpstreamError | None = None
        opened, self._opened = self._opened, None
        if opened is not None:
            try:
                await opened.log_in(identity.upstream, timeout=self._config.upstream_timeout_s,
                                    salted=self.host.salted)
            except UpstreamAuthError:
                raise
            except UpstreamError as exc:
                last = exc  # it broke while the client logged in: try afresh
            else:
                self._adopt(opened, identity)
                return
        addresses = self.host.upstream_addresses(self.node_id)
        if not addresses:
            raise UpstreamError(f"broker {self.node_id} is not part of the cluster any more")
        for address in addresses:
            try:
                conn = await UpstreamConnection.login(
                    address, identity.upstream, timeout=self._config.upstream_timeout_s,
                    salted=self.host.salted)
            except UpstreamAuthError:
                raise
            except UpstreamError as exc:
                last = exc
                continue
            self._adopt(conn, identity)
            return
        raise last or UpstreamError("no broker to connect to")

    def _adopt(self, conn: UpstreamConnection, identity: TenantIdentity) -> None:
        """``conn``, logged in as the tenant, is this client's connection from now on."""
        self.upstream = conn
        self.identity = identity
        self.host.record_versions(conn.address, conn.versions)
        self._rewriter = TenantRewriter(identity, self.host.tenant_topics(identity.prefix),
                                        self.host.listeners, self._lookup_topics)
        self._watch(conn)
        log.debug("%r logged in", self)

    def _watch(self, conn: UpstreamConnection) -> None:
        async def watch() -> None:
            await conn.closed.wait()
            self.close(f"the connection to broker {conn.address[0]}:{conn.address[1]} closed")

        task = asyncio.create_task(watch())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- serving ---------------------------------------------------------------------

    async def _serve(self) -> None:
        while True:
            payload = await read_frame(self._reader, self._config.max_request_bytes)
            await self._handle(parse_request(payload))

    async def _api_versions(self, request: Request) -> None:
        advertised = await self.host.advertised()
        supported = advertised[ApiKey.ApiVersions]
        if request.body is None or not supported[0] <= request.version <= supported[1]:
            # the one response a client can read whatever version it asked for
            body = api_versions_response(0, advertised, ErrorCode.UNSUPPORTED_VERSION)
            await self._queue(encode_response(body, 0, request.correlation_id))
            return
        await self._respond(request, api_versions_response(request.version, advertised))

    async def _handle(self, request: Request) -> None:
        if request.api_key == ApiKey.ApiVersions:
            await self._api_versions(request)
            return
        if request.api_key in (ApiKey.SaslHandshake, ApiKey.SaslAuthenticate):
            if request.body is not None:
                await self._respond(request, refusal(request, ErrorCode.ILLEGAL_SASL_STATE,
                                                     "this connection is logged in already"))
            raise _Done
        if request.body is None:
            raise ProtocolError(f"it sent {request.name} v{request.version}, which the gateway "
                                "cannot read")
        advertised = (await self.host.advertised()).get(request.api_key)
        assert self.upstream is not None and self._rewriter is not None
        broker = self.upstream.versions.get(request.api_key)
        if advertised is None or broker is None or not (
                advertised[0] <= request.version <= advertised[1]
                and broker[0] <= request.version <= broker[1]):
            await self._refuse(request, advertised)
            return
        if request.api_key in limits.LIMITED_APIS and await self._refused_by_limits(request):
            return
        plan = await self._rewriter.prepare(request)
        if plan.local is not None:
            await self._respond(request, plan.local)
            return
        expect = request.expects_response()
        slot: asyncio.Future[bytes] | None = None
        if expect:
            slot = asyncio.get_running_loop().create_future()
            await self._responses.put(slot)
        future = await self.upstream.send(plan.forward, request.version, request.client_id, expect)
        if future is not None and slot is not None:
            task = asyncio.create_task(self._complete(request, plan, future, slot))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _refuse(self, request: Request, advertised: VersionRange | None) -> None:
        if request.api_key in FORWARDED:
            code = ErrorCode.UNSUPPORTED_VERSION
            message = (f"{request.name} v{request.version} is not supported by this cluster"
                       + (f" (it supports v{advertised[0]}-v{advertised[1]})" if advertised else ""))
        else:
            code = ErrorCode.CLUSTER_AUTHORIZATION_FAILED
            message = f"{request.name} is not available on this cluster"
        log.info("%r: refused %s v%d", self, request.name, request.version)
        await self._respond(request, refusal(request, code, message))

    async def _complete(self, request: Request, plan: Plan, future: asyncio.Future[bytes],
                        slot: asyncio.Future[bytes]) -> None:
        try:
            spec = request.spec
            assert spec is not None and plan.finish is not None
            response = decode_response(spec, request.version, await future)
            response = await plan.finish(response)
            slot.set_result(encode_response(response, request.version, request.correlation_id))
        except asyncio.CancelledError:
            if not slot.done():
                slot.cancel()
            raise
        except Exception as exc:
            if not isinstance(exc, UpstreamError | ProtocolError):
                log.exception("%r: rewriting the %s response failed", self, request.name)
                exc = ProtocolError(f"rewriting the {request.name} response failed: {exc!r}")
            if not slot.done():
                slot.set_exception(exc)
                # a closing connection's writer may never get to it: not worth a warning
                slot.exception()

    async def _refused_by_limits(self, request: Request) -> bool:
        """Refuse (answer POLICY_VIOLATION for every topic) a request that would take the
        tenant past its topic or partition limit. Two such requests racing each other can
        both pass: the count is of what exists when each one arrives."""
        assert self.upstream is not None and self._rewriter is not None
        identity = self._rewriter.identity
        used = await limits.usage(self.upstream, self._rewriter.ns)
        refused = limits.refusal(request, identity.cluster_id, used, identity.limits,
                                 self._config.default_partitions)
        if refused is None:
            return False
        log.info("%r: refused %s: %s", self, request.name, refused)
        await self._respond(request, refusal(request, limits.POLICY_VIOLATION, refused))
        return True

    async def _lookup_topics(self) -> None:
        """Learn the ids of every topic the tenant can see (the broker filters by ACL)."""
        assert self.upstream is not None and self._rewriter is not None
        spec = APIS[ApiKey.Metadata]
        broker = self.upstream.versions.get(ApiKey.Metadata, (0, 0))
        version = min(12, broker[1], spec.versions[1])
        if version < 10:
            return
        request = MetadataRequest[version](topics=None, allow_auto_topic_creation=False,
                                           include_topic_authorized_operations=False)
        response = await self.upstream.request(request, version)
        self._rewriter.learn_topics(response, version, spec)
