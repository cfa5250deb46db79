"""A satellite's connection to the control channel, made once its config file exists.

The local satellite of ``streamplane up`` starts before the system cluster exists (it is
what starts it), so it is given the path of the channel config that ``up`` writes once
that cluster is healthy, and connects then.
"""

from __future__ import annotations

import logging
from pathlib import Path

from streamplane.channel.config import ChannelConfig, ChannelError
from streamplane.channel.registry import SatelliteAnnouncer
from streamplane.channel.satellite import KafkaDesiredSource, KafkaStatusSink
from streamplane.channel.source import DesiredSnapshot, DesiredStateSource, StatusSink
from streamplane.models.satellite import SatelliteInfo
from streamplane.models.status import ClusterStatus

log = logging.getLogger(__name__)


class ChannelLink(DesiredStateSource, StatusSink):
    """Desired state from, and status to, the channel described by ``config_path``."""

    def __init__(self, config_path: Path, satellite: str) -> None:
        self.config_path = config_path
        self.satellite = satellite
        self._source: KafkaDesiredSource | None = None
        self._sink: KafkaStatusSink | None = None
        self._announcer: SatelliteAnnouncer | None = None
        self._complained = False

    def _connect(self) -> bool:
        if self._source is not None:
            return True
        if not self.config_path.exists():
            return False
        try:
            config = ChannelConfig.load(self.config_path)
        except ChannelError as exc:
            if not self._complained:
                log.warning("cannot use channel config %s: %s", self.config_path, exc)
                self._complained = True
            return False
        self._source = KafkaDesiredSource(config, self.satellite)
        self._source.start()
        self._sink = KafkaStatusSink(config, self.satellite)
        self._announcer = SatelliteAnnouncer(config)
        log.info("satellite %s connected to the control channel at %s", self.satellite,
                 config.bootstrap)
        return True

    async def snapshot(self) -> DesiredSnapshot:
        if not self._connect():
            return DesiredSnapshot(complete=False)
        assert self._source is not None
        return await self._source.snapshot()

    async def publish(self, status: ClusterStatus) -> None:
        if self._connect():
            assert self._sink is not None
            await self._sink.publish(status)

    async def forget(self, cluster_id: str) -> None:
        if self._connect():
            assert self._sink is not None
            await self._sink.forget(cluster_id)

    async def announce(self, info: SatelliteInfo) -> None:
        if self._connect():
            assert self._announcer is not None
            await self._announcer.announce(info)

    async def close(self) -> None:
        if self._source is not None:
            await self._source.close()
        if self._sink is not None:
            await self._sink.close()
        if self._announcer is not None:
            await self._announcer.close()
