"""The satellite's end of the channel: PSCs from ``desired``, statuses to ``status``."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from types import TracebackType

from confluent_kafka import Message

from streamplane.channel.clients import CLOSE_TIMEOUT_S, DeliveringProducer, FollowsTopic, TopicFollower
from streamplane.channel.codec import (
    GENERATION_HEADER,
    SATELLITE_HEADER,
    DesiredCodec,
    Record,
    check_satellite_name,
    encode_status,
    satellites_of,
    status_key,
)
from streamplane.channel.config import ChannelConfig, ChannelError
from streamplane.channel.source import DesiredSnapshot, DesiredStateSource, StatusSink
from streamplane.models.psc import PhysicalClusterSpec
from streamplane.models.status import ClusterStatus

log = logging.getLogger(__name__)

#: how long a status write waits for the system cluster before the satellite moves on
STATUS_ACK_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class _Entry:
    spec: PhysicalClusterSpec | None = None
    error: str | None = None


class KafkaDesiredSource(FollowsTopic, DesiredStateSource):
    """The PSCs on the ``desired`` topic meant for satellite ``satellite``.

    Until the follower has read the topic up to the end offsets it found at start, the
    snapshot is empty and incomplete: part of a compacted log may hold older generations
    of a PSC than its end, and a satellite must neither act on those nor delete a cluster
    it merely has not read about yet.
    """

    def __init__(self, config: ChannelConfig, satellite: str) -> None:
        self.satellite = check_satellite_name(satellite)
        self._codec = DesiredCodec(config.encryption_key)
        self._entries: dict[str, _Entry] = {}
        self._follower = TopicFollower(config, config.desired_topic, self._apply,
                                       name=f"desired-{satellite}")

    async def wait_caught_up(self, timeout: float) -> None:
        self.start()
        await self._follower.wait_caught_up(timeout)

    async def snapshot(self) -> DesiredSnapshot:
        self.start()
        with self._follower.lock:
            if not self._follower.caught_up:
                return DesiredSnapshot(complete=False)
            snap = DesiredSnapshot(complete=True)
            for cluster_id, entry in self._entries.items():
                if entry.spec is not None:
                    snap.specs[cluster_id] = entry.spec
                else:
                    snap.errors[cluster_id] = f"desired/{cluster_id}: {entry.error}"
            return snap

    def _apply(self, record: Record) -> None:
        """Runs on the follower's thread with its lock held."""
        if record.key is None:
            log.warning("desired topic: ignoring a record without a key")
            return
        try:
            cluster_id = record.key.decode("utf-8")
        except UnicodeDecodeError:
            log.warning("desired topic: ignoring a record whose key %r is not UTF-8", record.key)
            return
        targets = satellites_of(record.header(SATELLITE_HEADER))
        if record.value is None or (targets is not None and self.satellite not in targets):
            # withdrawn, or (now) other satellites' cluster: this one runs none of its nodes
            self._entries.pop(cluster_id, None)
            return
        entry = self._decode(cluster_id, record)
        if entry.spec is not None and self.satellite not in entry.spec.satellites():
            self._entries.pop(cluster_id, None)
        else:
            self._entries[cluster_id] = entry

    def _decode(self, cluster_id: str, record: Record) -> _Entry:
        assert record.value is not None
        try:
            psc = self._codec.decode(record.value)
        except ValueError as exc:
            return _Entry(error=str(exc))
        if psc.id != cluster_id:
            return _Entry(error=f"the record's key is {cluster_id!r} but it holds cluster {psc.id!r}")
        generation = record.header(GENERATION_HEADER)
        if generation is not None and generation != str(psc.generation):
            return _Entry(error=f"the record's header says generation {generation} but the PSC "
                                f"says {psc.generation}")
        return _Entry(spec=psc)


#: how long closing waits for queued statuses when the status topic is not answering
UNREACHABLE_CLOSE_S = 2.0


class KafkaStatusSink(StatusSink):
    """Writes a satellite's ``ClusterStatus`` records to ``status`` (key ``<satellite>/<id>``).

    A write waits for the system cluster at most ``ack_timeout_s``; when that runs out the
    sink stops waiting (records stay queued in the producer, which retries) until a write
    is acknowledged again, so a down system cluster never stalls a satellite's reconcile
    loop. Tombstones that could not be delivered are written again on the next call.
    """

    def __init__(self, config: ChannelConfig, satellite: str,
                 ack_timeout_s: float = STATUS_ACK_TIMEOUT_S) -> None:
        self.satellite = check_satellite_name(satellite)
        self.topic = config.status_topic
        self.ack_timeout_s = ack_timeout_s
        self._producer = DeliveringProducer(config, name=f"status-{satellite}")
        self._reachable = True
        self._lock = threading.Lock()
        self._unsent_forgets: set[str] = set()

    @property
    def reachable(self) -> bool:
        """False since a write went unacknowledged, until one is acknowledged again."""
        return self._reachable

    async def publish(self, status: ClusterStatus) -> None:
        if status.satellite != self.satellite:
            raise ValueError(f"satellite {self.satellite!r} cannot publish the status of "
                             f"{status.id!r}, which belongs to satellite {status.satellite!r}")
        with self._lock:
            self._unsent_forgets.discard(status.id)
        await self._resend_forgets()
        headers = [(SATELLITE_HEADER, self.satellite.encode()),
                   (GENERATION_HEADER, str(status.generation).encode())]
        await self._write(status.id, encode_status(status), headers)

    async def forget(self, cluster_id: str) -> None:
        await self._resend_forgets()
        await self._write(cluster_id, None, [(SATELLITE_HEADER, self.satellite.encode())])

    async def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Deliver what is queued, for at most ``timeout`` seconds (``UNREACHABLE_CLOSE_S``
        when the system cluster has stopped answering: a satellite publishes every status
        again once it runs, so nothing is worth a long wait at exit), and stop."""
        if not self._reachable:
            timeout = min(timeout, UNREACHABLE_CLOSE_S)
        left = await self._producer.aclose(timeout)
        if left:
            log.warning("status sink %s: %d status record(s) were not delivered before closing",
                        self.satellite, left)

    async def __aenter__(self) -> KafkaStatusSink:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def _resend_forgets(self) -> None:
        with self._lock:
            pending, self._unsent_forgets = self._unsent_forgets, set()
        for cluster_id in sorted(pending):
            await self._write(cluster_id, None, [(SATELLITE_HEADER, self.satellite.encode())])

    async def _write(self, cluster_id: str, value: bytes | None,
                     headers: list[tuple[str, bytes]]) -> None:
        fut = self._producer.send(self.topic, status_key(self.satellite, cluster_id), value,
                                  headers)
        fut.add_done_callback(lambda f: self._delivered(cluster_id, value is None, f))
        if not self._reachable:
            return
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(fut)), self.ack_timeout_s)
        except TimeoutError:
            if self._reachable:
                log.warning("status topic %r did not acknowledge within %.0f s; the satellite "
                            "keeps going and statuses stay queued until it does",
                            self.topic, self.ack_timeout_s)
            self._reachable = False
        except ChannelError:
            pass  # logged by _delivered

    def _delivered(self, cluster_id: str, tombstone: bool, fut: Future[Message]) -> None:
        """Runs on the producer's thread."""
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is None:
            if not self._reachable:
                log.info("status topic %r acknowledges writes again", self.topic)
            self._reachable = True
            return
        log.warning("status of %s/%s was not delivered: %s", self.satellite, cluster_id, exc)
        if tombstone:
            with self._lock:
                self._unsent_forgets.add(cluster_id)
