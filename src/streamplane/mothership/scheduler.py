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
from streamplane.mothership.sizing import kept_specs
from streamplane.settings import BROKER_HEAP_MB
from streamplane.tenancy import DEFAULT_CELL

ZONE_SUFFIXES = "abcdefgh"


#: how many brokers a new (quarantine) cell gets: room for replication factor 3
QUARANTINE_BROKERS = 3


class NoCapacityError(RuntimeError):
    """No known satellite can take the cluster now; the message says what is missing."""


@dataclass(frozen=True)
class SchedulerSettings:
    broker_heap_mb: int = BROKER_HEAP_MB
    #: a satellite not heard from for this long is not given new clusters
    satellite_max_age_s: float = 30.0


def broker_zones(satellite_zone: str, zones: int, brokers: int) -> list[str]:
    """Rack labels spreading ``brokers`` over ``zones`` failure domains of a satellite."""
    if zones <= 1:
        return [satellite_zone] * brokers
    return [f"{satellite_zone}-{ZONE_SUFFIXES[i % zones]}" for i in range(brokers)]


def choose_satellite(
    satellites: Iterable[SatelliteInfo], placed: dict[str, list[int]], brokers: int,
    zone: str | None = None,
) -> SatelliteInfo:
    """Where a new cluster of ``brokers`` goes: spread first (the satellite running the
    fewest clusters, so one host's loss takes the fewest customers down), then the most
    free broker slots. ``placed`` maps satellite name to the broker counts of the clusters
    already placed on it; clusters a satellite runs on its own (the system cluster) count
    through what it reports."""
    candidates = [s for s in satellites if zone is None or s.zone == zone]
    if not candidates:
        where = f" in zone {zone}" if zone else ""
        raise NoCapacityError(f"no satellite{where} is connected")

    def load(s: SatelliteInfo) -> tuple[int, int]:
        mine = placed.get(s.name, [])
        return max(len(mine), len(s.clusters)), max(sum(mine), s.brokers)

    fits = [s for s in candidates if s.max_brokers - load(s)[1] >= brokers]
    if not fits:
        most = max(candidates, key=lambda s: s.max_brokers - load(s)[1])
        raise NoCapacityError(
            f"no satellite has room for {brokers} more broker(s); the most free is "
            f"{most.name} with {max(most.max_brokers - load(most)[1], 0)}")
    return min(fits, key=lambda s: (load(s)[0], -(s.max_brokers - load(s)[1]), s.name))


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


def resized_spec(spec: PhysicalClusterSpec, brokers: int, satellite_zone: str, zones: int,
                 ) -> PhysicalClusterSpec:
    """``spec`` with ``brokers`` brokers: new ones get the next ids and continue the zone
    rotation; removed ones are the highest ids (the controllers, the lowest, stay)."""
    current = sorted(spec.brokers, key=lambda b: b.id)
    if brokers < spec.controllers.count and spec.controllers.mode == "combined":
        raise ValueError(f"cluster {spec.id} runs {spec.controllers.count} controllers inside its "
                         f"brokers, so it cannot shrink to {brokers} broker(s)")
    if brokers <= len(current):
        kept = kept_specs(current, brokers)
    else:
        rotation = broker_zones(satellite_zone, zones, brokers)
        cells = current[0].cell if current else DEFAULT_CELL
        next_id = max((b.id for b in current), default=0) + 1
        kept = tuple(current) + tuple(
            BrokerSpec(id=next_id + i, zone=rotation[len(current) + i], cell=cells)
            for i in range(brokers - len(current)))
    return spec.model_copy(update={"brokers": kept})


def with_cell(spec: PhysicalClusterSpec, cell: str, brokers: int, satellite_zone: str) -> PhysicalClusterSpec:
    """``spec`` with ``brokers`` more brokers forming ``cell`` (next ids, zones rotating)."""
    next_id = max(b.id for b in spec.brokers) + 1
    zones = len({b.zone for b in spec.brokers})
    rotation = broker_zones(satellite_zone, zones, brokers)
    added = tuple(BrokerSpec(id=next_id + i, zone=rotation[i], cell=cell) for i in range(brokers))
    return spec.model_copy(update={"brokers": spec.brokers + added})


def tenant_in_cell(spec: PhysicalClusterSpec, tenant: str, cell: str, satellite_zone: str) -> PhysicalClusterSpec:
    """``spec`` with ``tenant`` living in ``cell``; the quarantine cell gets its brokers
    when it has none yet, and the default cell is where tenants not listed live."""
    cells = dict(spec.tenant_cells)
    if cell == DEFAULT_CELL:
        cells.pop(tenant, None)
    else:
        cells[tenant] = cell
        if not any(b.cell == cell for b in spec.brokers):
            spec = with_cell(spec, cell, QUARANTINE_BROKERS, satellite_zone)
    return spec.model_copy(update={"tenant_cells": cells})
