"""One connection from the gateway to a broker of the physical cluster, as a tenant.

It logs in with SASL/SCRAM as the tenant's own Kafka principal, so the cluster's ACLs
(PREFIXED on the tenant's prefix) confine whatever goes through it, even if the gateway
rewrote something wrongly. Requests go out in the order ``send`` is called; responses
are matched back by correlation id.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

from kafka.protocol.api_key import ApiKey
from kafka.protocol.metadata import ApiVersionsRequest
from kafka.protocol.sasl import SaslAuthenticateRequest, SaslHandshakeRequest

from streamplane.credentials.scram import ScramClient, ScramError, salted_password
from streamplane.gateway.auth import UpstreamCredentials
from streamplane.gateway.protocol import (
    APIS,
    ProtocolError,
    VersionRange,
    decode_response,
    encode_request,
    read_frame,
    response_correlation_id,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

Address = tuple[str, int]
#: how the gateway names itself to brokers in ApiVersions
SOFTWARE_NAME = "streamplane-gateway"
SOFTWARE_VERSION = "1"
#: bytes a connection may hold unsent before a writer waits. asyncio's 64 KiB default
#: makes the gateway wait for each large Produce (or Fetch response) to drain before it
#: reads the next, so reading and writing never overlap; the buffer is empty when idle
WRITE_BUFFER_BYTES = 4 * 1024 * 1024


class UpstreamError(Exception):
    """The broker could not be reached or the connection broke."""


class UpstreamAuthError(UpstreamError):
    """The broker refused the tenant's credentials: a provisioning problem, not the client's."""


def parse_address(text: str) -> Address:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"{text!r} is not host:port")
    return host.strip("[]"), int(port)


class SaltedPasswords:
    """PBKDF2 results of the upstream logins, so a connection storm does not redo them.

    Keyed by a hash of the password; computed in a thread, off the event loop."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._cache: OrderedDict[tuple[str, bytes, bytes, int], bytes] = OrderedDict()

    async def get(self, mechanism: str, password: str, salt: bytes, iterations: int) -> bytes:
        key = (mechanism, hashlib.sha256(password.encode()).digest(), salt, iterations)
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
            return found
        value = await asyncio.to_thread(salted_password, mechanism, password, salt, iterations)
        self._cache[key] = value
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return value


class UpstreamConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 address: Address) -> None:
        self.address = address
        self._reader = reader
        self._writer = writer
        writer.transport.set_write_buffer_limits(high=WRITE_BUFFER_BYTES)
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[bytes]] = {}
        self._error: BaseException | None = None
        self.closed = asyncio.Event()
        self.versions: Mapping[int, VersionRange] = {}
        self._task = asyncio.create_task(self._read_responses(), name=f"upstream {address}")

    # ---- opening ---------------------------------------------------------------------

    @classmethod
    async def open(cls, address: Address, timeout: float) -> UpstreamConnection:
        """A connection that has asked the broker for its API versions, not logged in."""
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(*address), timeout)
        except (OSError, TimeoutError) as exc:
            raise UpstreamError(f"cannot connect to broker {address[0]}:{address[1]}: {exc}") from exc
        conn = cls(reader, writer, address)
        conn.versions = await conn._or_close(conn._api_versions(), timeout, "answer ApiVersions")
        return conn

    @classmethod
    async def login(cls, address: Address, credentials: UpstreamCredentials, *, timeout: float,
                    salted: SaltedPasswords) -> UpstreamConnection:
        conn = await cls.open(address, timeout)
        await conn.log_in(credentials, timeout=timeout, salted=salted)
        return conn

    async def log_in(self, credentials: UpstreamCredentials, *, timeout: float,
                     salted: SaltedPasswords) -> None:
        """Log in a connection from ``open``; it is closed if that fails."""
        await self._or_close(self._authenticate(credentials, salted), timeout, "finish the login")

    async def _or_close(self, step: Awaitable[T], timeout: float, what: str) -> T:
        """``step`` within ``timeout``; if it fails or takes longer, the connection is closed."""
        try:
            return await asyncio.wait_for(step, timeout)
        except TimeoutError as exc:
            await self.close()
            raise UpstreamError(f"broker {self.address[0]}:{self.address[1]} did not {what} "
                                f"within {timeout:g} s") from exc
        except BaseException:
            await self.close()
            raise

    async def _api_versions(self) -> dict[int, VersionRange]:
        response = await self.request(ApiVersionsRequest[3](
            client_software_name=SOFTWARE_NAME, client_software_version=SOFTWARE_VERSION), 3)
        if response.error_code != 0:
            raise UpstreamError(f"broker {self.address} refused ApiVersions "
                                f"(error {response.error_code})")
        return {int(k.api_key): (int(k.min_version), int(k.max_version))
                for k in response.api_keys}

    async def _authenticate(self, credentials: UpstreamCredentials, salted: SaltedPasswords) -> None:
        mechanism = credentials.mechanism
        handshake = await self.request(SaslHandshakeRequest[1](mechanism=mechanism), 1)
        if handshake.error_code != 0:
            raise UpstreamAuthError(f"broker {self.address} does not offer {mechanism} "
                                    f"(it offers {', '.join(handshake.mechanisms)})")
        version = min(2, self.versions.get(ApiKey.SaslAuthenticate, (0, 0))[1])
        password = credentials.password.get_secret_value()
        client = ScramClient(mechanism, credentials.username, password)
        first = await self._sasl(client.first(), version)
        try:
            _, salt, iterations = client.parse_server_first(first)
            final = client.final(first, await salted.get(mechanism, password, salt, iterations))
            client.verify(await self._sasl(final, version))
        except ScramError as exc:
            raise UpstreamAuthError(f"logging in to broker {self.address} as "
                                    f"{credentials.username!r} failed: {exc}") from exc

    async def _sasl(self, token: bytes, version: int) -> bytes:
        response = await self.request(SaslAuthenticateRequest[version](auth_bytes=token), version)
        if response.error_code != 0:
            raise UpstreamAuthError(f"broker {self.address[0]}:{self.address[1]} refused the "
                                    f"login: {response.error_message or response.error_code}")
        return bytes(response.auth_bytes)

    # ---- requests --------------------------------------------------------------------

    async def send(self, body: Any, version: int, client_id: str | None,
                   expect_response: bool = True) -> asyncio.Future[bytes] | None:
        """Write one request; the future of its raw response (None if none is expected).
        Requests reach the broker in the order of the calls."""
        if self._error is not None or self.closed.is_set():
            raise UpstreamError(f"the connection to broker {self.address} is closed")
        correlation_id = next(self._ids) & 0x7FFFFFFF
        data = encode_request(body, version, correlation_id, client_id)
        future: asyncio.Future[bytes] | None = None
        if expect_response:
            future = asyncio.get_running_loop().create_future()
            self._pending[correlation_id] = future
        self._writer.write(data)
        try:
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            self._fail(exc)
            raise UpstreamError(f"the connection to broker {self.address} broke: {exc}") from exc
        return future

    async def request(self, body: Any, version: int, client_id: str | None = SOFTWARE_NAME) -> Any:
        """Send a request of the gateway's own and decode its response."""
        future = await self.send(body, version, client_id)
        assert future is not None
        payload = await future
        return decode_response(APIS[int(body.API_KEY)], version, payload)

    async def _read_responses(self) -> None:
        try:
            while True:
                payload = await read_frame(self._reader)
                correlation_id = response_correlation_id(payload)
                future = self._pending.pop(correlation_id, None)
                if future is None:
                    raise ProtocolError(f"broker {self.address} answered unknown correlation id "
                                        f"{correlation_id}")
                if not future.done():
                    future.set_result(payload)
        except asyncio.CancelledError:
            self._fail(UpstreamError(f"the connection to broker {self.address} was closed"))
            raise
        except (asyncio.IncompleteReadError, ConnectionError, OSError, ProtocolError) as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
            log.debug("upstream %s:%s closed: %r", *self.address, exc)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(UpstreamError(f"the connection to broker {self.address} "
                                                   f"broke: {exc!r}"))
        self._pending.clear()
        self.closed.set()
        self._writer.close()

    async def close(self) -> None:
        self._fail(UpstreamError("closed by the gateway"))
        if self._task is not asyncio.current_task():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
