"""A multi-zone fleet on one machine: ``streamplane up --zones 3``.

Three satellites, each a host of its own in zone a, b or c: with root, each runs in its own
network namespace with a private address on a bridge (``proc/netns.py``), so a test can cut
one off; without root, each gets a loopback address of its own (127.x.y.z) and network
splits cannot be simulated. The system cluster runs as three nodes, one per zone, from the
same spec in every satellite's data dir (the control channel runs on it, so it cannot come
through the channel); its controller ports are fixed in that spec, because each node must
know every voter before the cluster exists. The mothership runs outside the namespaces and
reaches every host over the bridge.

Layout: ``<data dir>/fleet.json`` (the namespaces, links and addresses, written before they
are made), ``<data dir>/satellites/<name>/`` (each satellite's data dir), and the
mothership's usual ``<data dir>/mothership/``.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from streamplane.channel import ChannelConfig
from streamplane.files import read_json, write_json
from streamplane.models.psc import BrokerSpec, PhysicalClusterSpec, SuperUser, new_kafka_cluster_id
from streamplane.models.status import ClusterState, ClusterStatus
from streamplane.mothership.cluster_status import merge
from streamplane.mothership.gateways import stop_gateways
from streamplane.mothership.scheduler import cluster_tls
from streamplane.mothership.server import MothershipLayout
from streamplane.proc import netns, process
from streamplane.proc.netns import Fleet
from streamplane.satellite.kafka.node import KAFKA_MAIN
from streamplane.satellite.ports import PortAllocator
from streamplane.tenancy import SYSTEM_CLUSTER_ID

from .local import (
    LEFTOVER_GRACE_S,
    MOTHERSHIP_STOP_TIMEOUT_S,
    SATELLITE_STOP_TIMEOUT_S,
    LocalDeployment,
    LocalError,
    _stop_daemon,
    _terminate_all,
)

ZONE_NAMES = ("zone-a", "zone-b", "zone-c", "zone-d", "zone-e")
#: the controller port of every system-cluster node when each host has an address of its own
SYSTEM_CONTROLLER_PORT = 9093


def fleet_tag(data_dir: Path) -> str:
    """Six characters naming this data dir's namespaces and links."""
    return hashlib.sha256(str(data_dir.absolute()).encode()).hexdigest()[:6]


@dataclass
class FleetDeployment:
    """Several satellites on this machine, as hosts in zones, driven through ``data_dir``."""

    data_dir: Path
    zones: int = 3
    #: spare satellites per zone (hosts that replacements can go to)
    per_zone: int = 1
    use_namespaces: bool | None = None

    @property
    def state_file(self) -> Path:
        """The hosts as built (gone after ``down``, which removes them)."""
        return self.data_dir / "fleet.json"

    @property
    def config_file(self) -> Path:
        """What was asked for (kept, so a later ``up`` builds the same fleet)."""
        return self.data_dir / "fleet-config.json"

    @property
    def mothership(self) -> MothershipLayout:
        return MothershipLayout(self.data_dir)

    @staticmethod
    def exists(data_dir: Path) -> bool:
        return (data_dir / "fleet-config.json").exists()

    def fleet(self) -> Fleet:
        """The hosts, made now if they are not there yet (idempotent)."""
        if self.zones < 1 or self.zones > len(ZONE_NAMES):
            raise LocalError(f"--zones must be between 1 and {len(ZONE_NAMES)}, got {self.zones}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.config_file.exists():
            asked = read_json(self.config_file)
            self.zones, self.per_zone = int(asked["zones"]), int(asked["per_zone"])
        else:
            write_json(self.config_file, {"zones": self.zones, "per_zone": self.per_zone})
        try:
            return netns.create_fleet(fleet_tag(self.data_dir), list(ZONE_NAMES[:self.zones]),
                                      self.per_zone, self.state_file, self.use_namespaces)
        except netns.FleetError as exc:
            raise LocalError(str(exc)) from None

    def members(self, fleet: Fleet) -> list[LocalDeployment]:
        return [LocalDeployment(self.data_dir / "satellites" / h.name, satellite_name=h.name,
                                zone=h.zone, host=h.address, wrap=tuple(h.command([])),
                                channel_file=self.mothership.channel_file)
                for h in fleet.hosts]

    # ---- the system cluster ----------------------------------------------------------

    def system_spec(self, fleet: Fleet) -> PhysicalClusterSpec:
        """Three nodes over the first host of each zone (one node when there is one zone),
        the same spec in every satellite's data dir; made once, then kept."""
        members = self.members(fleet)
        for m in members:
            existing = m.source.get(SYSTEM_CLUSTER_ID)
            if existing is not None:
                psc = existing
                break
        else:
            psc = _system_spec(fleet)
        named = set(psc.satellites())
        for m in members:
            if m.satellite_name in named and m.source.get(SYSTEM_CLUSTER_ID) != psc:
                m.source.submit(psc)
        return psc

    def system_status(self, fleet: Fleet, psc: PhysicalClusterSpec) -> ClusterStatus | None:
        parts = {m.satellite_name: m.status(SYSTEM_CLUSTER_ID) for m in self.members(fleet)
                 if m.satellite_name in psc.satellites()}
        return merge(psc.satellite, parts)

    def wait_system_healthy(self, fleet: Fleet, psc: PhysicalClusterSpec, timeout: float,
                            progress: bool = True) -> ClusterStatus:
        deadline = time.monotonic() + timeout
        last = ""
        members = self.members(fleet)
        while time.monotonic() < deadline:
            st = self.system_status(fleet, psc)
            if st is not None:
                line = f"system: {st.status}" + (f" ({st.message})" if st.message else "")
                if progress and line != last:
                    print(line, file=sys.stderr, flush=True)
                    last = line
                if st.status == ClusterState.HEALTHY and st.observed_generation == psc.generation:
                    return st
            for m in members:
                if m.satellite_pid() is None:
                    raise LocalError(f"satellite {m.satellite_name} stopped; its last words:\n"
                                     + m.log_tail())
            time.sleep(0.5)
        raise LocalError(f"the system cluster was not healthy after {timeout:.0f} s; see the "
                         f"satellites' logs under {self.data_dir / 'satellites'}")

    def ensure_channel(self, psc: PhysicalClusterSpec, status: ClusterStatus) -> ChannelConfig:
        """The channel config the mothership and satellites share (made once, kept)."""
        path = self.mothership.channel_file
        if not status.bootstrap:
            raise LocalError("the system cluster reports no client address")
        if path.exists():
            config = ChannelConfig.load(path)
            if config.bootstrap != status.bootstrap:  # its nodes chose other ports this time
                config = config.model_copy(update={"bootstrap": status.bootstrap})
                config.save(path)
            return config
        config = ChannelConfig(bootstrap=status.bootstrap, username=psc.super_user.name,
                               password=psc.super_user.password,
                               encryption_key=ChannelConfig.new_encryption_key())
        config.save(path)
        return config

    # ---- up and down -----------------------------------------------------------------

    def start(self, timeout: float, db_url: str | None = None) -> tuple[Fleet, ClusterStatus, str]:
        """Hosts, satellites, the system cluster and the mothership; returns once healthy."""
        fleet = self.fleet()
        psc = self.system_spec(fleet)
        for m in self.members(fleet):
            m.start_satellite()
        status = self.wait_system_healthy(fleet, psc, timeout)
        self.ensure_channel(psc, status)
        # the mothership's half of a LocalDeployment of the whole data dir
        return fleet, status, LocalDeployment(self.data_dir).start_mothership(db_url)

    def down(self) -> list[str]:
        """Stop the mothership, its gateways, every satellite (together) and what they left,
        then remove the hosts. Bounded like the single-host ``down``."""
        said: list[str] = []
        pid = self.mothership.pid()
        if pid is not None:
            said.append(_stop_daemon(pid, self.mothership.pid, "mothership", MOTHERSHIP_STOP_TIMEOUT_S))
        said += stop_gateways(self.mothership.root)
        if self.state_file.exists():
            members = self.members(Fleet.load(self.state_file))
            with concurrent.futures.ThreadPoolExecutor(max(1, len(members))) as pool:
                for line in pool.map(_stop_satellite, members):
                    if line:
                        said.append(line)
        leftovers = process.find_by_marker(str(self.data_dir / "satellites"), KAFKA_MAIN)
        for handle, code in zip(leftovers, _terminate_all(leftovers, LEFTOVER_GRACE_S), strict=True):
            said.append(f"stopped leftover Kafka process {handle.pid} (exit {code})")
        said += netns.destroy_fleet(self.state_file)
        return said

    def satellites(self) -> list[dict[str, object]]:
        if not self.state_file.exists():
            return []
        fleet = Fleet.load(self.state_file)
        return [{"name": m.satellite_name, "zone": m.zone, "host": m.host, "pid": m.satellite_pid(),
                 "netns": h.netns} for m, h in zip(self.members(fleet), fleet.hosts, strict=True)]

    def statuses(self) -> list[ClusterStatus]:
        """Every cluster the satellites report, one status per cluster."""
        if not self.state_file.exists():
            return []
        by_cluster: dict[str, dict[str, ClusterStatus | None]] = {}
        for m in self.members(Fleet.load(self.state_file)):
            for st in m.statuses():
                by_cluster.setdefault(st.id, {})[m.satellite_name] = st
        merged = [merge(None, parts) for _, parts in sorted(by_cluster.items())]
        return [st for st in merged if st is not None]


def _stop_satellite(member: LocalDeployment) -> str | None:
    pid = member.satellite_pid()
    if pid is None:
        return None
    return _stop_daemon(pid, member.satellite_pid, f"satellite {member.satellite_name}",
                        SATELLITE_STOP_TIMEOUT_S)


def _system_spec(fleet: Fleet) -> PhysicalClusterSpec:
    firsts: dict[str, netns.Host] = {}
    for h in fleet.hosts:
        firsts.setdefault(h.zone, h)
    hosts = list(firsts.values())[:3]
    brokers = []
    for i, h in enumerate(hosts, start=1):
        port = SYSTEM_CONTROLLER_PORT if fleet.isolated else PortAllocator(h.address).allocate()
        brokers.append(BrokerSpec(id=i, zone=h.zone, satellite=h.name, host=h.address,
                                  controller_port=port))
    return PhysicalClusterSpec(
        id=SYSTEM_CLUSTER_ID,
        kafka_cluster_id=new_kafka_cluster_id(),
        satellite=hosts[0].name,
        host=hosts[0].address,
        controllers={"mode": "combined", "count": len(brokers)},
        brokers=tuple(brokers),
        broker_configs={"log.retention.hours": "168"},
        super_user=SuperUser(password=secrets.token_urlsafe(24)),
        tls=cluster_tls(SYSTEM_CLUSTER_ID) if len(brokers) > 1 else None,
    )
