"""Thin, thread-backed wrappers around confluent-kafka for the channel's two needs.

``TopicFollower`` reads a compacted topic from its beginning, forever, and knows when it
has caught up with the end offsets that existed when it looked. ``DeliveringProducer``
turns librdkafka's delivery callbacks into futures. Both keep every blocking librdkafka
call on their own thread, never on an event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Self

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from streamplane.channel.codec import Headers, Record, headers_dict
from streamplane.channel.config import ChannelConfig, ChannelError

log = logging.getLogger(__name__)

POLL_S = 0.2
METADATA_TIMEOUT_S = 5.0
#: how often a follower looks for new partitions, and retries while the topic is missing
REFRESH_S = 10.0
RETRY_S = 1.0
CLOSE_TIMEOUT_S = 15.0


def describe_kafka_error(exc: BaseException | KafkaError) -> str:
    err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else exc
    if isinstance(err, KafkaError):
        return str(err.str())
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


class TopicFollower:
    """Reads every partition of ``topic`` from offset 0 and hands each record to ``apply``.

    ``apply`` runs on the follower's thread while ``lock`` is held; ``caught_up`` becomes
    True (under the same lock) only once every known partition has been read up to the
    end offset it had when the follower first saw it.
    """

    def __init__(self, config: ChannelConfig, topic: str, apply: Callable[[Record], None],
                 name: str) -> None:
        self.topic = topic
        self.name = name
        self.lock = threading.RLock()
        self._apply = apply
        self._conf = {
            **config.client_config(),
            # assign() never joins the group, so nothing is committed: every start reads
            # the topic from its beginning, which compaction keeps short
            "group.id": f"streamplane-{name}-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            "allow.auto.create.topics": False,
            "error_cb": self._on_error,
        }
        self._targets: dict[int, int] = {}
        self._behind: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._caught_up = threading.Event()
        self.last_error: str | None = None

    @property
    def caught_up(self) -> bool:
        return self._caught_up.is_set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"channel-{self.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    async def close(self) -> None:
        await asyncio.to_thread(self.stop)

    async def wait_caught_up(self, timeout: float) -> None:
        """Raise TimeoutError unless the follower catches up within ``timeout`` seconds."""
        if not await asyncio.to_thread(self._caught_up.wait, timeout):
            why = f": {self.last_error}" if self.last_error else ""
            raise TimeoutError(f"{self.name} did not catch up with topic {self.topic!r} "
                               f"within {timeout:.0f} s{why}")

    # ---- the follower thread ------------------------------------------------------------

    def _run(self) -> None:
        try:
            consumer = Consumer(self._conf)
        except (KafkaException, ValueError) as exc:
            self._problem(f"cannot create a consumer: {describe_kafka_error(exc)}")
            return
        try:
            next_refresh = 0.0
            while not self._stop.is_set():
                try:
                    if time.monotonic() >= next_refresh:
                        ok = self._refresh(consumer)
                        next_refresh = time.monotonic() + (REFRESH_S if ok else RETRY_S)
                    msg = consumer.poll(POLL_S)
                    if msg is not None:
                        self._handle(msg)
                except Exception as exc:  # the follower must outlive any one bad moment
                    log.exception("%s: following topic %s failed", self.name, self.topic)
                    self._problem(f"following topic {self.topic!r} failed: "
                                  f"{describe_kafka_error(exc)}")
                    self._stop.wait(RETRY_S)
        finally:
            consumer.close()

    def _refresh(self, consumer: Consumer) -> bool:
        """Assign partitions not yet assigned, noting their end offsets; True if all went well."""
        try:
            meta = consumer.list_topics(self.topic, timeout=METADATA_TIMEOUT_S)
        except KafkaException as exc:
            self._problem(f"cannot read metadata of topic {self.topic!r}: "
                          f"{describe_kafka_error(exc)}")
            return False
        topic = meta.topics.get(self.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            self._problem(f"topic {self.topic!r} does not exist on the system cluster yet")
            return False
        ends: dict[int, tuple[int, int]] = {}
        for p in sorted(set(topic.partitions) - set(self._targets)):
            try:
                ends[p] = consumer.get_watermark_offsets(
                    TopicPartition(self.topic, p), timeout=METADATA_TIMEOUT_S, cached=False)
            except KafkaException as exc:
                self._problem(f"cannot read the end offset of {self.topic}[{p}]: "
                              f"{describe_kafka_error(exc)}")
                return False
        if ends:
            consumer.incremental_assign(
                [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in ends])
            with self.lock:
                for p, (low, high) in ends.items():
                    self._targets[p] = high
                    if high > low:
                        self._behind.add(p)
                self._update_caught_up()
        return True

    def _handle(self, msg: Message) -> None:
        err = msg.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                self._reached(msg.partition(), msg.offset())
            else:
                self._problem(f"reading topic {self.topic!r}: {describe_kafka_error(err)}")
            return
        record = Record(key=msg.key(), value=msg.value(), headers=headers_dict(msg.headers()))
        with self.lock:
            try:
                self._apply(record)
            except Exception:
                log.exception("%s: could not apply a record of %s[%s] at offset %s",
                              self.name, self.topic, msg.partition(), msg.offset())
            self._reached(msg.partition(), msg.offset() + 1)

    def _reached(self, partition: int, next_offset: int) -> None:
        with self.lock:
            if partition in self._behind and next_offset >= self._targets[partition]:
                self._behind.discard(partition)
                self._update_caught_up()
        if self.last_error is not None:
            log.info("%s: reading topic %s again", self.name, self.topic)
            self.last_error = None

    def _update_caught_up(self) -> None:
        if self._targets and not self._behind:
            if not self._caught_up.is_set():
                log.debug("%s: caught up with topic %s", self.name, self.topic)
            self._caught_up.set()
        else:
            self._caught_up.clear()

    def _on_error(self, err: KafkaError) -> None:
        self._problem(f"system cluster: {describe_kafka_error(err)}")

    def _problem(self, message: str) -> None:
        # one warning per outage: librdkafka repeats (and rewords) its errors while it retries
        if self.last_error is None:
            log.warning("%s: %s", self.name, message)
        elif message != self.last_error:
            log.debug("%s: %s", self.name, message)
        self.last_error = message


class FollowsTopic:
    """The life of a reader built on one ``TopicFollower`` (``self._follower``): start it,
    close it, or use the reader as an async context manager; it says whether it has caught
    up with the topic and why it cannot read it, if it cannot."""

    _follower: TopicFollower

    @property
    def caught_up(self) -> bool:
        return self._follower.caught_up

    @property
    def last_error(self) -> str | None:
        """Why the topic cannot be read right now, if it cannot."""
        return self._follower.last_error

    def start(self) -> None:
        self._follower.start()

    async def close(self) -> None:
        await self._follower.close()

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()


class DeliveringProducer:
    """An idempotent, acks=all producer whose sends return futures of the delivered message."""

    def __init__(self, config: ChannelConfig, name: str, **overrides: Any) -> None:
        self.name = name
        self._producer = Producer({
            **config.client_config(),
            "enable.idempotence": True,
            "acks": "all",
            # a record must never create a topic: the channel's topics need compaction,
            # which only ensure_topics sets up
            "allow.auto.create.topics": False,
            **overrides,
        })
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"channel-{name}", daemon=True)
        self._thread.start()

    def send(self, topic: str, key: bytes, value: bytes | None,
             headers: Headers) -> Future[Message]:
        fut: Future[Message] = Future()

        def delivered(err: KafkaError | None, msg: Message) -> None:
            if fut.done():
                return
            if err is not None:
                fut.set_exception(ChannelError(
                    f"could not write to topic {topic!r}: {describe_kafka_error(err)}"))
            else:
                fut.set_result(msg)

        if self._stop.is_set():
            fut.set_exception(ChannelError(f"{self.name} is closed"))
            return fut
        try:
            self._producer.produce(topic, key=key, value=value, headers=headers,
                                   on_delivery=delivered)
        except BufferError:
            fut.set_exception(ChannelError(
                f"{self.name}: too many records wait for the system cluster; try again later"))
        except KafkaException as exc:
            fut.set_exception(ChannelError(
                f"could not write to topic {topic!r}: {describe_kafka_error(exc)}"))
        return fut

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(POLL_S)

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> int:
        """Deliver what is queued (up to ``timeout``) and stop; returns how many were left."""
        self._stop.set()
        self._thread.join(timeout)
        left: int = self._producer.flush(timeout)
        return left

    async def aclose(self, timeout: float = CLOSE_TIMEOUT_S) -> int:
        return await asyncio.to_thread(self.close, timeout)
