"""Satellites announce themselves on the compacted ``satellites`` topic; the mothership reads it.

Each record is keyed by satellite name and holds a ``SatelliteInfo``: its zone, how many
brokers it may run and what it runs now. A satellite needs no inbound port to be found.
"""

from __future__ import annotations

import asyncio
import logging
import time

from pydantic import ValidationError

from streamplane.channel.clients import DeliveringProducer, TopicFollower
from streamplane.channel.codec import Record
from streamplane.channel.config import ChannelConfig, ChannelError
from streamplane.models.satellite import SatelliteInfo

log = logging.getLogger(__name__)

ANNOUNCE_TIMEOUT_S = 5.0


class SatelliteAnnouncer:
    """Publishes this satellite's ``SatelliteInfo``; never blocks a reconcile loop for long."""

    def __init__(self, config: ChannelConfig) -> None:
        self._config = config
        self._producer = DeliveringProducer(config, "satellite-announcer")

    async def announce(self, info: SatelliteInfo) -> bool:
        fut = self._producer.send(self._config.satellites_topic, info.name.encode(),
                                  info.model_dump_json().encode(), [])
        try:
            await asyncio.wait_for(asyncio.wrap_future(fut), ANNOUNCE_TIMEOUT_S)
        except (TimeoutError, ChannelError) as exc:
            log.warning("satellite %s could not announce itself: %s", info.name, exc)
            return False
        return True

    async def close(self) -> None:
        await self._producer.aclose()


class SatelliteDirectory:
    """The mothership's view of every satellite that ever announced itself."""

    def __init__(self, config: ChannelConfig) -> None:
        self._satellites: dict[str, SatelliteInfo] = {}
        self._follower = TopicFollower(config, config.satellites_topic, self._apply,
                                       "satellite-directory")

    def start(self) -> None:
        self._follower.start()

    async def close(self) -> None:
        await self._follower.close()

    @property
    def caught_up(self) -> bool:
        return self._follower.caught_up

    def _apply(self, record: Record) -> None:
        if record.key is None:
            return
        name = record.key.decode("utf-8", "replace")
        if record.value is None:
            self._satellites.pop(name, None)
            return
        try:
            self._satellites[name] = SatelliteInfo.model_validate_json(record.value)
        except ValidationError as exc:
            log.warning("ignoring an unreadable announcement of satellite %s: %s", name, exc)

    def all(self) -> list[SatelliteInfo]:
        with self._follower.lock:
            return sorted(self._satellites.values(), key=lambda s: s.name)

    def live(self, max_age_s: float) -> list[SatelliteInfo]:
        now = time.time()
        return [s for s in self.all() if now - s.updated_at <= max_age_s]
