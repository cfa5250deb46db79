"""A fleet of simulated hosts on one machine: one network namespace per host, or loopback addresses.

Tests of placement, zones and replacement need several "hosts" with their own addresses,
and tests of network splits need a host that can be cut off. As root each host gets its own
network namespace joined by a veth pair to a bridge in the root namespace; the bridge has
an address too, so the mothership, the tests and Kafka clients (all in the root namespace)
reach every host, and taking one veth down splits that host from everybody. No forwarding
and no NAT are set up: the hosts' traffic never leaves the machine.

Without root there are no namespaces, and each host gets its own address in 127/8, which
Linux routes to ``lo`` with no setup; processes can bind and advertise distinct addresses,
but nothing can be cut off (``Fleet.no_split_reason`` says so, ``Fleet.cut`` raises).

Every fleet is recorded in a state file before anything is created, so a crash half-way
leaves a record ``destroy_fleet`` can clean up from; it deletes only the names recorded.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: the Linux limit on interface names (IFNAMSIZ - 1)
MAX_IFNAME = 15
#: tags are short so every derived interface name fits MAX_IFNAME
TAG_PATTERN = re.compile(r"^[a-z0-9]{1,6}$")
#: the hosts' subnet; the bridge takes .1, the hosts .11, .12, ...
PREFIX_LEN = 24
BRIDGE_HOST = 1
FIRST_HOST = 11
#: how many subnets derived from a tag are tried before giving up
SUBNET_TRIES = 64
#: the host's end of its veth pair, inside its namespace
HOST_IFNAME = "eth0"
IP_TIMEOUT_S = 15.0
NO_SPLITS = (
    "network splits need root and network namespaces; this fleet gives each host a loopback "
    "address (127/8) on the one shared lo interface, so no host can be cut off"
)


class FleetError(RuntimeError):
    """A fleet could not be built, changed or read; the message says what and why."""


@dataclass(frozen=True)
class Host:
    """One simulated host: where its processes run and which address they bind and advertise."""

    name: str
    zone: str
    address: str
    #: the namespace its processes run in; None in loopback mode
    netns: str | None = None
    #: its veth end in the root namespace (taken down to cut the host off); None in loopback mode
    link: str | None = None

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` wrapped to run inside this host's namespace (unchanged in loopback mode)."""
        if self.netns is None:
            return list(argv)
        return [_ip_binary(), "netns", "exec", self.netns, *argv]


@dataclass
class Fleet:
    """The hosts of one fleet and, when isolated, the bridge that joins them to the root namespace."""

    tag: str
    hosts: list[Host]
    bridge: str | None = None
    bridge_address: str | None = None
    #: True when each host has its own network namespace (and can be cut off)
    isolated: bool = False
    #: the zones and hosts per zone it was asked for, to tell a reusable fleet from another one
    zones: list[str] = field(default_factory=list)
    per_zone: int = 1

    @property
    def no_split_reason(self) -> str | None:
        """Why network splits cannot be simulated on this fleet, or None when they can."""
        return None if self.isolated else NO_SPLITS

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise FleetError(f"fleet {self.tag} has no host {name!r}; its hosts are {[h.name for h in self.hosts]}")

    def cut(self, host_name: str) -> None:
        """Split ``host_name`` from everybody: it reaches nobody and nobody reaches it."""
        _run_ip(["link", "set", "dev", self._link_of(host_name), "down"])

    def heal(self, host_name: str) -> None:
        """Undo ``cut``: the host is reachable again."""
        _run_ip(["link", "set", "dev", self._link_of(host_name), "up"])

    def _link_of(self, host_name: str) -> str:
        host = self.host(host_name)
        if not self.isolated or host.link is None:
            raise FleetError(f"cannot cut or heal {host_name}: {NO_SPLITS}")
        return host.link

    def to_json(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "isolated": self.isolated,
            "bridge": self.bridge,
            "bridge_address": self.bridge_address,
            "zones": list(self.zones),
            "per_zone": self.per_zone,
            "hosts": [
                {"name": h.name, "zone": h.zone, "address": h.address, "netns": h.netns, "link": h.link}
                for h in self.hosts
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fleet:
        try:
            return cls(
                tag=str(data["tag"]),
                isolated=bool(data["isolated"]),
                bridge=data["bridge"],
                bridge_address=data["bridge_address"],
                zones=[str(z) for z in data["zones"]],
                per_zone=int(data["per_zone"]),
                hosts=[
                    Host(name=h["name"], zone=h["zone"], address=h["address"], netns=h["netns"], link=h["link"])
                    for h in data["hosts"]
                ],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FleetError(f"not a fleet description ({type(exc).__name__}: {exc})") from exc

    def save(self, path: Path) -> None:
        """Write atomically: a crash mid-write must not leave a record destroy_fleet cannot read.

        (Not through ``streamplane.files``: packages of the bottom layer do not import each other.)
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w") as fh:
            json.dump(self.to_json(), fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Fleet:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise FleetError(f"cannot read the fleet state file {path}: {exc}") from exc
        if not isinstance(data, Mapping):
            raise FleetError(f"the fleet state file {path} does not hold a fleet description")
        try:
            return cls.from_json(data)
        except FleetError as exc:
            raise FleetError(
                f"the fleet state file {path} is damaged: {exc}; remove its namespaces "
                "(`ip netns list`) and links (`ip link`) named after its tag by hand, then the file"
            ) from exc


def default_state_file(tag: str) -> Path:
    """Where a fleet is recorded when the caller names no state file (namespaces too vanish on reboot)."""
    return Path(tempfile.gettempdir()) / f"streamplane-fleet-{tag}.json"


def host_names(zones: list[str], per_zone: int = 1) -> list[tuple[str, str]]:
    """(host, zone) pairs: ``sat-a`` for zone ``zone-a``, or ``sat-a1``, ``sat-a2`` with spares."""
    if not zones:
        raise FleetError("a fleet needs at least one zone")
    if per_zone < 1:
        raise FleetError(f"per_zone must be at least 1, not {per_zone}")
    suffixes = [re.sub(r"[^a-z0-9]", "", zone.lower().rsplit("-", 1)[-1]) for zone in zones]
    if "" in suffixes or len(set(suffixes)) != len(suffixes):
        raise FleetError(
            f"zones {zones} do not end in distinct letters or digits after their last '-', "
            "which name the hosts (zone-a -> sat-a); rename the zones"
        )
    pairs: list[tuple[str, str]] = []
    for zone, suffix in zip(zones, suffixes, strict=True):
        if per_zone == 1:
            pairs.append((f"sat-{suffix}", zone))
        else:
            pairs += [(f"sat-{suffix}{i}", zone) for i in range(1, per_zone + 1)]
    return pairs


def create_fleet(
    tag: str,
    zones: list[str],
    per_zone: int = 1,
    state_file: Path | None = None,
    use_namespaces: bool | None = None,
) -> Fleet:
    """The fleet recorded in ``state_file`` if it is still whole, else a new one built and recorded there.

    ``tag`` (up to 6 lowercase letters or digits, e.g. from a hash of the data dir) keeps the
    names of different fleets apart. ``use_namespaces`` defaults to whether we are root.
    """
    if not TAG_PATTERN.match(tag):
        raise FleetError(f"fleet tag {tag!r} must be 1 to 6 lowercase letters or digits (interface names are short)")
    isolated = os.geteuid() == 0 if use_namespaces is None else use_namespaces
    if isolated and os.geteuid() != 0:
        raise FleetError(
            f"cannot build fleet {tag} with network namespaces: they need root (this is uid {os.geteuid()}); "
            "run as root, or pass use_namespaces=False for loopback addresses (without network splits)"
        )
    pairs = host_names(zones, per_zone)
    state_file = state_file or default_state_file(tag)

    if state_file.exists():
        old = Fleet.load(state_file)
        wanted = (tag, isolated, list(zones), per_zone)
        if (old.tag, old.isolated, old.zones, old.per_zone) != wanted:
            raise FleetError(
                f"{state_file} records another fleet (tag {old.tag}, zones {old.zones}, {old.per_zone} per zone, "
                f"isolated={old.isolated}); destroy it first with destroy_fleet({str(state_file)!r})"
            )
        if _whole(old):
            return old
        destroy_fleet(state_file)  # a crash half-way, or parts removed by hand: start again

    fleet = _isolated_plan(tag, zones, per_zone, pairs) if isolated else _loopback_plan(tag, zones, per_zone, pairs)
    _check_names_free(fleet)  # what the state file records must be ours alone to delete
    fleet.save(state_file)
    if isolated:
        try:
            _build(fleet)
        except BaseException:
            destroy_fleet(state_file)
            raise
    return fleet


def destroy_fleet(state_file: Path) -> list[str]:
    """Delete the veths, namespaces and bridge recorded in ``state_file``, then the file; say what went.

    Processes still inside a namespace do not stop this (the caller stops them first); with
    their veth gone they are cut off from everything.
    """
    if not state_file.exists():
        return []
    fleet = Fleet.load(state_file)
    removed: list[str] = []
    if fleet.isolated:
        namespaces = _namespaces()
        for host in fleet.hosts:
            # deleting one end of a veth pair deletes the other, inside the namespace
            if host.link and _link_exists(host.link):
                _run_ip(["link", "del", "dev", host.link])
                removed.append(f"deleted veth {host.link} of {host.name}")
            if host.netns and host.netns in namespaces:
                _run_ip(["netns", "del", host.netns])
                removed.append(f"deleted network namespace {host.netns}")
        if fleet.bridge and _link_exists(fleet.bridge):
            _run_ip(["link", "del", "dev", fleet.bridge])
            removed.append(f"deleted bridge {fleet.bridge}")
    state_file.unlink(missing_ok=True)
    removed.append(f"removed state file {state_file}")
    return removed


def processes_in(netns: str) -> list[int]:
    """Pids of the processes running in namespace ``netns`` ([] when there is no such namespace)."""
    if netns not in _namespaces():
        return []
    out = _run_ip(["netns", "pids", netns])
    return [int(word) for word in out.split()]


def _loopback_plan(tag: str, zones: list[str], per_zone: int, pairs: list[tuple[str, str]]) -> Fleet:
    digest = hashlib.sha256(f"loopback:{tag}".encode()).digest()
    # 127.0.x.x stays free for whatever else binds loopback addresses; .1 to .10 are never used
    base = f"127.{1 + digest[0] % 254}.{digest[1]}"
    hosts = [Host(name, zone, f"{base}.{FIRST_HOST + i}") for i, (name, zone) in enumerate(pairs)]
    return Fleet(tag=tag, hosts=hosts, isolated=False, zones=list(zones), per_zone=per_zone)


def _isolated_plan(tag: str, zones: list[str], per_zone: int, pairs: list[tuple[str, str]]) -> Fleet:
    net = _free_subnet(tag)
    hosts = []
    for i, (name, zone) in enumerate(pairs):
        link = f"spv{tag}{i}"
        if len(link) > MAX_IFNAME:
            raise FleetError(f"fleet {tag} has too many hosts: interface name {link} is longer than {MAX_IFNAME}")
        hosts.append(Host(name, zone, str(net[FIRST_HOST + i]), netns=f"sp-{tag}-{name}", link=link))
    if FIRST_HOST + len(pairs) >= net.num_addresses - 1:
        raise FleetError(f"{len(pairs)} hosts do not fit one /{PREFIX_LEN}")
    return Fleet(
        tag=tag,
        hosts=hosts,
        bridge=f"spbr{tag}",
        bridge_address=str(net[BRIDGE_HOST]),
        isolated=True,
        zones=list(zones),
        per_zone=per_zone,
    )


def _free_subnet(tag: str) -> ipaddress.IPv4Network:
    """A /24 in 10/8 derived from ``tag`` that overlaps no address or route on this machine."""
    taken = _used_networks()
    for attempt in range(SUBNET_TRIES):
        digest = hashlib.sha256(f"{tag}:{attempt}".encode()).digest()
        net = ipaddress.IPv4Network(f"10.{digest[0]}.{digest[1]}.0/{PREFIX_LEN}")
        if not any(net.overlaps(other) for other in taken):
            return net
    raise FleetError(f"no free /{PREFIX_LEN} in 10.0.0.0/8 for fleet {tag} after {SUBNET_TRIES} tries")


def _used_networks() -> list[ipaddress.IPv4Network]:
    """Networks of every IPv4 address and route here (a default route covers nothing of ours)."""
    found = []
    for line in _run_ip(["-4", "-o", "addr", "show"]).splitlines():
        words = line.split()
        if "inet" in words:
            found.append(ipaddress.IPv4Interface(words[words.index("inet") + 1]).network)
    for line in _run_ip(["-4", "route", "show", "table", "all"]).splitlines():
        # "10.1.2.0/24 dev ..." or, with a route type first, "local 127.0.0.0/8 dev lo ..."
        for word in line.split()[:2]:
            try:
                found.append(ipaddress.IPv4Network(word, strict=False))
                break
            except ValueError:
                continue  # "default", or a route type
    return found


def _build(fleet: Fleet) -> None:
    assert fleet.bridge is not None and fleet.bridge_address is not None
    _run_ip(["link", "add", "name", fleet.bridge, "type", "bridge"])
    _run_ip(["addr", "add", f"{fleet.bridge_address}/{PREFIX_LEN}", "dev", fleet.bridge])
    _run_ip(["link", "set", "dev", fleet.bridge, "up"])
    for host in fleet.hosts:
        assert host.netns is not None and host.link is not None
        _run_ip(["netns", "add", host.netns])
        # the peer is born inside the namespace, so its name cannot clash with one in the root namespace
        _run_ip(["link", "add", "name", host.link, "type", "veth", "peer", "name", HOST_IFNAME, "netns", host.netns])
        _run_ip(["-n", host.netns, "addr", "add", f"{host.address}/{PREFIX_LEN}", "dev", HOST_IFNAME])
        _run_ip(["-n", host.netns, "link", "set", "dev", HOST_IFNAME, "up"])
        _run_ip(["-n", host.netns, "link", "set", "dev", "lo", "up"])
        _run_ip(["link", "set", "dev", host.link, "master", fleet.bridge, "up"])


def _check_names_free(fleet: Fleet) -> None:
    if not fleet.isolated:
        return
    namespaces = _namespaces()
    taken = [h.netns for h in fleet.hosts if h.netns in namespaces]
    taken += [link for link in (fleet.bridge, *(h.link for h in fleet.hosts)) if link and _link_exists(link)]
    if taken:
        raise FleetError(
            f"cannot build fleet {fleet.tag}: {', '.join(str(name) for name in taken)} already exist "
            "(another fleet with the same tag, recorded elsewhere?); destroy that fleet or pick another tag"
        )


def _whole(fleet: Fleet) -> bool:
    """Whether everything the fleet records still exists (always, for a loopback fleet)."""
    if not fleet.isolated:
        return True
    namespaces = _namespaces()
    links = [fleet.bridge, *(h.link for h in fleet.hosts)]
    return all(h.netns in namespaces for h in fleet.hosts) and all(
        link is not None and _link_exists(link) for link in links
    )


def _namespaces() -> set[str]:
    # "name (id: 3)" once a namespace has an id
    return {line.split()[0] for line in _run_ip(["netns", "list"]).splitlines() if line.strip()}


def _link_exists(name: str) -> bool:
    result = subprocess.run(
        [_ip_binary(), "link", "show", "dev", name], capture_output=True, text=True, timeout=IP_TIMEOUT_S
    )
    return result.returncode == 0


def _ip_binary() -> str:
    return shutil.which("ip") or "/usr/sbin/ip"


def _run_ip(args: list[str]) -> str:
    argv = [_ip_binary(), *args]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=IP_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FleetError(f"`{' '.join(argv)}` could not run: {exc} (is iproute2 installed?)") from exc
    if result.returncode != 0:
        raise FleetError(f"`{' '.join(argv)}` failed (exit {result.returncode}): {result.stderr.strip()}")
    return result.stdout
