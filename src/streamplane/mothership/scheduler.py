"""Placement: turn a request for capacity into a PSC on a satellite with room for it.

Ports are left to the satellite, which is the only one that can see what is free on its
host; everything else about the physical cluster is decided here.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from streamplane.models.psc import BrokerSpec, PhysicalClusterSpec
from streamplane.models.satellite import SatelliteInfo

ZONE_SUFFIXES = "abcdefgh"


class NoCapacityError(RuntimeError):
    """No known satellite can take the cluster now; the message says what is missing."""


@dataclass(frozen=True)
class SchedulerSettings:
    broker_heap_mb: int = 384
    #: a satellite not heard from for this long is not given new clusters
    satellite_max_age_s: float = 30.0


def broker_zones(satellite_zone: str, zones: int, brokers: int) -> list[str]:
    """Rack labels spreading ``brokers`` over ``zones`` failure domains of a satellite."""
    if zones <= 1:
        return [satellite_zone] * brokers
    return [f"{satellite_zone}-{ZONE_SUFFIXES[i % zones]}" for i in range(brokers)]


def choose_satellite(
    satellites: Iterable[SatelliteInfo], used_brokers: dict[str, int], brokers: int,
    zone: str | None = None,
) -> SatelliteInfo:
    """The live satellite with the most free broker slots (in ``zone`` if given)."""
    candidates = [s for s in satellites if zone is None or s.zone == zone]
    if not candidates:
        where = f" in zone {zone}" if zone else ""
        raise NoCapacityError(f"no satellite{where} is connected")
    free = {s.name: s.max_brokers - used_brokers.get(s.name, 0) for s in candidates}
    best = max(candidates, key=lambda s: (free[s.name], s.name))
    if free[best.name] < brokers:
        raise NoCapacityError(
            f"no satellite has room for {brokers} more broker(s); the most free is "
            f"{best.name} with {max(free[best.name], 0)}")
    return best


def physical_cluster_spec(
    cluster_id: str, satellite: SatelliteInfo, brokers: int, zones: int, kafka_version: str,
    settings: SchedulerSettings,
) -> PhysicalClusterSpec:
    rf = min(3, brokers)
    return PhysicalClusterSpec(
        id=cluster_id,
        satellite=satellite.name,
        kafka_version=kafka_version,
        controllers={"mode": "combined", "count": 3 if brokers >= 3 else 1},
        brokers=tuple(BrokerSpec(id=i + 1, zone=z)
                      for i, z in enumerate(broker_zones(satellite.zone, zones, brokers))),
        broker_configs={
            "default.replication.factor": str(rf),
            "min.insync.replicas": str(min(2, rf)),
            "num.partitions": "3",
        },
        jvm={"heap_mb": settings.broker_heap_mb},
        super_user={"password": secrets.token_urlsafe(24)},
    )
