"""TLS on the gateway's client listeners, with certificates replaced while it runs.

Every listener is created once with a ``RotatingContext``. It is an ``ssl.SSLContext`` whose
only job is to hand each new connection to the context currently in service, so swapping
that context changes the certificate of new connections and leaves open ones alone (their
TLS session lives in an ``SSLObject`` of the context they started with).

``TlsCertificates`` builds those contexts from the certificate and key files, notices when
the files change (``poll`` every ``reload_interval_s``, or ``reload`` when an operator asks)
and keeps the old context whenever the new files do not make a working one: a certificate
renewal half-way through (the certificate written, the key not yet) or a broken file must
never take the gateway's TLS down.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)


class TlsSettings(BaseModel):
    """Where the client-side TLS certificate lives. Clients then use SASL_SSL."""

    model_config = ConfigDict(frozen=True)

    #: the certificate (PEM), optionally followed by its intermediate CA certificates
    cert_file: Path
    #: its private key (PEM, unencrypted)
    key_file: Path
    #: when set, clients must present a certificate signed by one of these CAs (mutual TLS)
    ca_file: Path | None = None
    #: how often the files are checked for a replacement
    reload_interval_s: float = Field(default=1.0, gt=0)
    #: how long a client may take to finish the TLS handshake
    handshake_timeout_s: float = Field(default=10.0, gt=0)


class TlsError(Exception):
    """The certificate files do not make a working TLS setup; the message says why."""


@dataclass(frozen=True)
class CertificateInfo:
    """What an operator wants to know about the certificate in service."""

    serial: int
    subject: str
    issuer: str
    not_after: datetime

    def __str__(self) -> str:
        return (f"serial {self.serial:x}, subject {self.subject}, issued by {self.issuer}, "
                f"valid until {self.not_after:%Y-%m-%d %H:%M} UTC")


class RotatingContext(ssl.SSLContext):
    """An SSLContext for ``asyncio.start_server`` that serves each new connection from
    whichever context ``current`` is at that moment. asyncio asks the listener's context
    for one ``wrap_bio`` per accepted connection; nothing else of it is used."""

    current: ssl.SSLContext

    def __new__(cls, current: ssl.SSLContext) -> RotatingContext:
        self = super().__new__(cls, ssl.PROTOCOL_TLS_SERVER)
        self.current = current
        return self

    def wrap_bio(self, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO,
                 server_side: bool = False, server_hostname: str | bytes | None = None,
                 session: ssl.SSLSession | None = None) -> ssl.SSLObject:
        return self.current.wrap_bio(incoming, outgoing, server_side=server_side,
                                     server_hostname=server_hostname, session=session)

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        return self.current.wrap_socket(*args, **kwargs)


_Fingerprint = tuple[tuple[int, int, int, int] | None, ...]


class TlsCertificates:
    """The gateway's TLS contexts: ``listener_context`` for the listeners, rebuilt from
    ``settings``' files when they change."""

    def __init__(self, settings: TlsSettings) -> None:
        self.settings = settings
        #: holds a context without a certificate until ``start`` loads one
        self._rotating = RotatingContext(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
        self._fingerprint: _Fingerprint = ()
        self._digest = b""
        self._lock = asyncio.Lock()
        self._watch: asyncio.Task[None] | None = None
        self.info: CertificateInfo | None = None
        #: how many times a new certificate was put in service (the first load counts)
        self.loads = 0

    @property
    def listener_context(self) -> ssl.SSLContext:
        """For ``asyncio.start_server``; serves the certificate once ``start`` loaded it."""
        return self._rotating

    @property
    def _paths(self) -> list[Path]:
        s = self.settings
        return [p for p in (s.cert_file, s.key_file, s.ca_file) if p is not None]

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Load the certificate (TlsError if it does not work) and watch its files."""
        await self.reload()
        self._watch = asyncio.create_task(self._watch_loop(), name="gateway TLS reload")

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None

    # ---- reloading -------------------------------------------------------------------

    async def reload(self) -> bool:
        """Build a context from the files as they are now and put it in service for new
        connections; True if the certificate changed. A failure keeps the one in service
        and raises TlsError saying what is wrong."""
        async with self._lock:
            fingerprint = await asyncio.to_thread(self._stat)
            try:
                digest, context, info = await asyncio.to_thread(self._build)
            except TlsError as exc:
                self._fingerprint = fingerprint
                if self.info is not None:
                    log.error("the new TLS certificate files do not work, so the gateway keeps "
                              "serving the old certificate (%s): %s", self.info, exc)
                raise
            self._fingerprint = fingerprint
            if digest == self._digest:
                return False
            self._rotating.current = context
            self._digest = digest
            self.info = info
            self.loads += 1
            log.info("TLS: new client connections get the certificate with %s", info)
            if info.not_after < datetime.now(UTC):
                log.warning("TLS: the certificate in service expired on %s", info.not_after)
            return True

    async def poll(self) -> bool:
        """Reload if any of the files changed since the last look (mtime, inode, size);
        True if a new certificate went into service."""
        fingerprint = await asyncio.to_thread(self._stat)
        if fingerprint == self._fingerprint:
            return False
        try:
            return await self.reload()
        except TlsError:
            return False

    async def _watch_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reload_interval_s)
            try:
                await self.poll()
            except Exception:
                log.exception("TLS: checking the certificate files failed")

    def _stat(self) -> _Fingerprint:
        marks: list[tuple[int, int, int, int] | None] = []
        for path in self._paths:
            try:
                st = os.stat(path)
            except OSError:
                marks.append(None)
                continue
            marks.append((st.st_mtime_ns, st.st_ino, st.st_dev, st.st_size))
        return tuple(marks)

    def _read_digest(self) -> bytes:
        sha = hashlib.sha256()
        for path in self._paths:
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise TlsError(f"cannot read {path}: {exc.strerror or exc}") from exc
            sha.update(len(data).to_bytes(8, "big") + data)
        return sha.digest()

    def _build(self) -> tuple[bytes, ssl.SSLContext, CertificateInfo]:
        """Runs in a worker thread: a new context from the files, and their digest."""
        settings = self.settings
        before = self._read_digest()
        if before == self._digest and self.info is not None:
            return before, self._rotating.current, self.info
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(settings.cert_file, settings.key_file)
        except ssl.SSLError as exc:
            if "KEY_VALUES_MISMATCH" in str(exc):
                raise TlsError(f"the key in {settings.key_file} does not belong to the "
                               f"certificate in {settings.cert_file}") from exc
            raise TlsError(f"cannot load the certificate {settings.cert_file} with the key "
                           f"{settings.key_file}: {exc.reason or exc}") from exc
        except OSError as exc:
            raise TlsError(f"cannot read the certificate or key: {exc}") from exc
        if settings.ca_file is not None:
            try:
                context.load_verify_locations(cafile=settings.ca_file)
            except (ssl.SSLError, OSError) as exc:
                raise TlsError(f"cannot load the client CA certificates {settings.ca_file}: "
                               f"{exc}") from exc
            context.verify_mode = ssl.CERT_REQUIRED
        info = _describe(settings.cert_file.read_bytes())
        after = self._read_digest()
        if after != before:
            raise TlsError("the certificate files changed while they were being loaded")
        return after, context, info


def check_certificate(settings: TlsSettings) -> CertificateInfo:
    """The certificate the files make, or TlsError saying why they do not work (checked
    before gateways are started with them)."""
    return TlsCertificates(settings)._build()[2]


def _describe(pem: bytes) -> CertificateInfo:
    cert = x509.load_pem_x509_certificate(pem)
    return CertificateInfo(serial=cert.serial_number, subject=cert.subject.rfc4514_string(),
                           issuer=cert.issuer.rfc4514_string(),
                           not_after=cert.not_valid_after_utc)
