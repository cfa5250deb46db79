"""Placement: turn a request for capacity into a PSC on satellites with room for it.

A fleet of one satellite (the embedded single-host default) runs each cluster on that host,
with rack labels standing in for zones. A fleet of several satellites spreads a cluster's
brokers over real hosts: a multi-zone cluster round-robin over three zones (so its first
three brokers, its controllers, are one per zone), a single-zone cluster inside one zone,
and never two brokers of a cluster on one satellite while another satellite in that zone
has room. Ports are left to the satellites, the only ones that can see what is free on
their hosts; everything else about the physical cluster is decided here.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import SecretStr

from streamplane.credentials.cluster_ca import CertificateAuthority
from streamplane.models.psc import BrokerSpec, ClusterTls, PhysicalClusterSpec, new_kafka_cluster_id
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
        return _load(s, placed)

    fits = [s for s in candidates if s.max_brokers - load(s)[1] >= brokers]
    if not fits:
        most = max(candidates, key=lambda s: s.max_brokers - load(s)[1])
        raise NoCapacityError(
            f"no satellite has room for {brokers} more broker(s); the most free is "
            f"{most.name} with {max(most.max_brokers - load(most)[1], 0)}")
    return min(fits, key=lambda s: (load(s)[0], -(s.max_brokers - load(s)[1]), s.name))


def _load(s: SatelliteInfo, placed: dict[str, list[int]]) -> tuple[int, int]:
    """(clusters, brokers) a satellite runs: what is placed on it, or what it reports."""
    mine = placed.get(s.name, [])
    return max(len(mine), len(s.clusters)), max(sum(mine), s.brokers)


def place_brokers(
    satellites: Iterable[SatelliteInfo], placed: dict[str, list[int]], brokers: int, zones: int,
    avoid: Sequence[str] = (), start: int = 0, cluster: Sequence[str] = (),
) -> list[SatelliteInfo]:
    """The satellite of each of ``brokers`` new brokers, spread over ``zones`` zones (the
    ones in ``avoid`` order first when growing a cluster that already spans them; ``start``
    continues its rotation; ``cluster`` names the satellites its brokers already run on)."""
    live = sorted(satellites, key=lambda s: s.name)
    if not live:
        raise NoCapacityError("no satellite is connected")
    by_zone: dict[str, list[SatelliteInfo]] = {}
    for s in live:
        by_zone.setdefault(s.zone, []).append(s)
    free = {s.name: s.max_brokers - _load(s, placed)[1] for s in live}
    room = {z: sum(max(free[s.name], 0) for s in members) for z, members in by_zone.items()}
    if avoid:
        chosen = list(avoid)
        missing = [z for z in chosen if z not in by_zone]
        if missing:
            raise NoCapacityError(f"no satellite of zone {', '.join(missing)} is connected")
    elif zones >= 2:
        if len(by_zone) < zones:
            raise NoCapacityError(
                f"a multi-zone cluster needs connected satellites in {zones} zones; they are in "
                f"{len(by_zone)} ({', '.join(sorted(by_zone))})")
        chosen = sorted(by_zone, key=lambda z: (-room[z], z))[:zones]
        chosen.sort()
    else:
        fits = [z for z in by_zone if room[z] >= brokers]
        if not fits:
            roomiest = max(by_zone, key=lambda z: (room[z], z))
            raise NoCapacityError(f"no zone has room for {brokers} more broker(s); the most free is "
                                  f"{roomiest} with {room[roomiest]}")
        # spread customers first: the zone whose least busy satellite runs the fewest
        # clusters (one host's loss takes the fewest down), then the most room
        def busy(z: str) -> int:
            return min(_load(s, placed)[0] for s in by_zone[z] if free[s.name] > 0)

        chosen = [min(fits, key=lambda z: (busy(z), -room[z], z))]
    mine = Counter(cluster)
    out = []
    for i in range(brokers):
        zone = chosen[(start + i) % len(chosen)]
        candidates = [s for s in by_zone[zone] if free[s.name] > 0]
        if not candidates:
            raise NoCapacityError(f"zone {zone} has no satellite with room for another broker")
        best = min(candidates, key=lambda s: (mine[s.name], _load(s, placed)[0], -free[s.name], s.name))
        free[best.name] -= 1
        mine[best.name] += 1
        out.append(best)
    return out


def cluster_tls(cluster_id: str) -> ClusterTls:
    """A new CA for a cluster whose nodes talk to each other across hosts."""
    ca = CertificateAuthority.new(cluster_id)
    return ClusterTls(ca_cert=ca.cert_pem, ca_key=SecretStr(ca.key_pem))


def spread_brokers(first_id: int, satellites: Sequence[SatelliteInfo], cell: str = DEFAULT_CELL,
                   ) -> tuple[BrokerSpec, ...]:
    """Brokers from ``first_id`` on ``satellites`` (one each, in order), in their zones."""
    return tuple(BrokerSpec(id=first_id + i, zone=s.zone, cell=cell, satellite=s.name, host=s.host)
                 for i, s in enumerate(satellites))


def spans_satellites(spec: PhysicalClusterSpec) -> bool:
    """Whether the cluster's brokers run on several satellites (a cluster placed by
    ``place_brokers``) rather than all on one."""
    return len({spec.node_satellite(b.id) for b in spec.brokers}) > 1


def physical_cluster_spec(
    cluster_id: str, satellite: SatelliteInfo, brokers: int, zones: int, kafka_version: str,
    settings: SchedulerSettings, spread: Sequence[SatelliteInfo] = (),
) -> PhysicalClusterSpec:
    """A new PSC: on ``satellite`` with rack labels for ``zones``, or, given ``spread``
    (one satellite per broker, from ``place_brokers``), over those satellites; the first
    broker's satellite then does the cluster-wide work."""
    rf = min(3, brokers)
    nodes = (spread_brokers(1, spread) if spread else
             tuple(BrokerSpec(id=i + 1, zone=z)
                   for i, z in enumerate(broker_zones(satellite.zone, zones, brokers))))
    return PhysicalClusterSpec(
        id=cluster_id,
        kafka_cluster_id=new_kafka_cluster_id(),
        satellite=spread[0].name if spread else satellite.name,
        host=spread[0].host if spread else satellite.host,
        kafka_version=kafka_version,
        controllers={"mode": "combined", "count": 3 if brokers >= 3 else 1},
        brokers=nodes,
        broker_configs={
            "default.replication.factor": str(rf),
            "min.insync.replicas": str(min(2, rf)),
            "num.partitions": "3",
        },
        jvm={"heap_mb": settings.broker_heap_mb},
        super_user={"password": secrets.token_urlsafe(24)},
        tls=cluster_tls(cluster_id) if len({s.name for s in spread}) > 1 else None,
    )


def resized_spec(spec: PhysicalClusterSpec, brokers: int, satellite_zone: str, zones: int,
                 spread: Sequence[SatelliteInfo] = ()) -> PhysicalClusterSpec:
    """``spec`` with ``brokers`` brokers: new ones get the next ids and continue the zone
    rotation (on the satellites ``spread`` names, for a cluster over several); removed ones
    are the highest ids (the controllers, the lowest, stay)."""
    current = sorted(spec.brokers, key=lambda b: b.id)
    if brokers < spec.controllers.count and spec.controllers.mode == "combined":
        raise ValueError(f"cluster {spec.id} runs {spec.controllers.count} controllers inside its "
                         f"brokers, so it cannot shrink to {brokers} broker(s)")
    if brokers <= len(current):
        kept = kept_specs(current, brokers)
    elif spread:
        next_id = max(b.id for b in current) + 1
        kept = tuple(current) + spread_brokers(next_id, spread, current[0].cell)
    else:
        rotation = broker_zones(satellite_zone, zones, brokers)
        cells = current[0].cell if current else DEFAULT_CELL
        next_id = max((b.id for b in current), default=0) + 1
        kept = tuple(current) + tuple(
            BrokerSpec(id=next_id + i, zone=rotation[len(current) + i], cell=cells)
            for i in range(brokers - len(current)))
    return spec.model_copy(update={"brokers": kept})


def with_cell(spec: PhysicalClusterSpec, cell: str, brokers: int, satellite_zone: str,
              spread: Sequence[SatelliteInfo] = ()) -> PhysicalClusterSpec:
    """``spec`` with ``brokers`` more brokers forming ``cell`` (next ids, zones rotating,
    on the satellites ``spread`` names for a cluster over several)."""
    next_id = max(b.id for b in spec.brokers) + 1
    if spread:
        return spec.model_copy(update={"brokers": spec.brokers + spread_brokers(next_id, spread, cell)})
    zones = len({b.zone for b in spec.brokers})
    rotation = broker_zones(satellite_zone, zones, brokers)
    added = tuple(BrokerSpec(id=next_id + i, zone=rotation[i], cell=cell) for i in range(brokers))
    return spec.model_copy(update={"brokers": spec.brokers + added})


def tenant_in_cell(spec: PhysicalClusterSpec, tenant: str, cell: str, satellite_zone: str,
                   spread: Sequence[SatelliteInfo] = ()) -> PhysicalClusterSpec:
    """``spec`` with ``tenant`` living in ``cell``; the quarantine cell gets its brokers
    when it has none yet, and the default cell is where tenants not listed live."""
    cells = dict(spec.tenant_cells)
    if cell == DEFAULT_CELL:
        cells.pop(tenant, None)
    else:
        cells[tenant] = cell
        if not any(b.cell == cell for b in spec.brokers):
            spec = with_cell(spec, cell, QUARANTINE_BROKERS, satellite_zone, spread)
    return spec.model_copy(update={"tenant_cells": cells})
