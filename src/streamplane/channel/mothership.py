"""The mothership's end of the channel: PSCs to ``desired``, statuses from ``status``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from types import TracebackType

from confluent_kafka import Message

from streamplane.channel.clients import CLOSE_TIMEOUT_S, DeliveringProducer, FollowsTopic, TopicFollower
from streamplane.channel.codec import (
    SATELLITE_HEADER,
    DesiredCodec,
    Record,
    check_satellite_name,
    decode_status,
    split_status_key,
)
from streamplane.channel.config import ChannelConfig, ChannelError
from streamplane.models.psc import PhysicalClusterSpec
from streamplane.models.status import ClusterStatus

log = logging.getLogger(__name__)

PUBLISH_ACK_TIMEOUT_S = 30.0
WAIT_POLL_S = 0.05

StatusKey = tuple[str, str]


class DesiredPublisher:
    """Writes PSCs (keyed by cluster id) and their tombstones to the ``desired`` topic."""

    def __init__(self, config: ChannelConfig,
                 ack_timeout_s: float = PUBLISH_ACK_TIMEOUT_S) -> None:
        self.topic = config.desired_topic
        self.ack_timeout_s = ack_timeout_s
        self._codec = DesiredCodec(config.encryption_key)
        self._producer = DeliveringProducer(config, name="desired-publisher")

    async def publish(self, psc: PhysicalClusterSpec) -> int:
        """Write ``psc`` and wait until the system cluster has it (acks=all); its offset."""
        value, headers = self._codec.encode(psc)
        msg = await self._send(psc.id, value, headers)
        return int(msg.offset())

    async def withdraw(self, cluster_id: str, satellite: str) -> int:
        """Tombstone ``cluster_id``: satellite ``satellite`` stops and removes it."""
        check_satellite_name(satellite)
        msg = await self._send(cluster_id, None, [(SATELLITE_HEADER, satellite.encode())])
        return int(msg.offset())

    async def _send(self, cluster_id: str, value: bytes | None,
                    headers: list[tuple[str, bytes]]) -> Message:
        fut = self._producer.send(self.topic, cluster_id.encode(), value, headers)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(fut), self.ack_timeout_s)
        except TimeoutError:
            raise ChannelError(
                f"the system cluster did not acknowledge cluster {cluster_id}'s desired state "
                f"within {self.ack_timeout_s:.0f} s; check that it is running and reachable"
            ) from None

    async def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Deliver what is queued, for at most ``timeout`` seconds, and stop."""
        left = await self._producer.aclose(timeout)
        if left:
            log.warning("desired publisher: %d record(s) were not delivered before closing", left)

    async def __aenter__(self) -> DesiredPublisher:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()


class StatusReader(FollowsTopic):
    """Every satellite's latest ``ClusterStatus``, read from the ``status`` topic."""

    def __init__(self, config: ChannelConfig) -> None:
        self._statuses: dict[StatusKey, ClusterStatus] = {}
        self._errors: dict[str, str] = {}
        self._follower = TopicFollower(config, config.status_topic, self._apply,
                                       name="status-reader")

    def get(self, satellite: str, cluster_id: str) -> ClusterStatus | None:
        with self._follower.lock:
            return self._statuses.get((satellite, cluster_id))

    def all(self) -> dict[StatusKey, ClusterStatus]:
        """``{(satellite, cluster id): status}``, a copy."""
        with self._follower.lock:
            return dict(self._statuses)

    def errors(self) -> dict[str, str]:
        """``{record key: why it could not be read}`` for unreadable status records."""
        with self._follower.lock:
            return dict(self._errors)

    async def wait_caught_up(self, timeout: float) -> None:
        self.start()
        await self._follower.wait_caught_up(timeout)

    async def wait_for(self, satellite: str, cluster_id: str,
                       predicate: Callable[[ClusterStatus | None], bool],
                       timeout: float) -> ClusterStatus | None:
        """Wait until ``predicate(status or None)`` holds; TimeoutError says what was seen."""
        self.start()
        deadline = time.monotonic() + timeout
        while True:
            current = self.get(satellite, cluster_id)
            if predicate(current):
                return current
            if time.monotonic() >= deadline:
                seen = (f"{current.status}, generation {current.observed_generation}/"
                        f"{current.generation}" if current else "no status")
                why = f"; {self.last_error}" if self.last_error else ""
                raise TimeoutError(f"status of {satellite}/{cluster_id} did not reach the "
                                   f"expected state within {timeout:.0f} s (saw {seen}{why})")
            await asyncio.sleep(WAIT_POLL_S)

    def _apply(self, record: Record) -> None:
        """Runs on the follower's thread with its lock held."""
        if record.key is None:
            return
        name = record.key.decode("utf-8", "replace")
        try:
            key = split_status_key(record.key)
        except (ValueError, UnicodeDecodeError) as exc:
            self._errors[name] = str(exc)
            return
        self._errors.pop(name, None)
        if record.value is None:
            self._statuses.pop(key, None)
            return
        try:
            status = decode_status(record.value)
        except ValueError as exc:
            self._errors[name] = str(exc)
            self._statuses.pop(key, None)
            return
        if (status.satellite, status.id) != key:
            self._errors[name] = (f"holds the status of {status.satellite}/{status.id}, "
                                  f"not of {name}")
            self._statuses.pop(key, None)
            return
        self._statuses[key] = status
