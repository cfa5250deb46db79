"""A multi-host fleet on one machine (proc/netns.py): reachability, splits, cleanup, loopback mode.

The namespace tests need root; each builds its fleet under a random tag and destroys it in
a ``finally``, so a failing test leaves no namespace, veth or bridge behind.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamplane.proc.netns import (
    Fleet,
    FleetError,
    Host,
    create_fleet,
    destroy_fleet,
    host_names,
    processes_in,
)

ZONES = ["zone-a", "zone-b", "zone-c"]
PORT = 9099
CONNECT_TIMEOUT_S = 2.0
HEAL_DEADLINE_S = 10.0

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="network namespaces, veths and bridges need root (loopback mode is tested without)"
)

# echoes one line per connection; prints "ready" once listening so the test need not sleep
SERVER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen()
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.sendall(b"hello\\n")
    c.close()
"""

CLIENT = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2) as c:
    sys.exit(0 if c.recv(16) == b"hello\\n" else 1)
"""


def _tag() -> str:
    return secrets.token_hex(3)


def _greeting(address: str, port: int = PORT) -> bytes:
    with socket.create_connection((address, port), timeout=CONNECT_TIMEOUT_S) as conn:
        conn.settimeout(CONNECT_TIMEOUT_S)
        return conn.recv(16)


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[Fleet, Path]]:
    state = tmp_path / "fleet.json"
    try:
        yield create_fleet(_tag(), ZONES, state_file=state, use_namespaces=True), state
    finally:
        destroy_fleet(state)


@pytest.fixture
def server_on_a(fleet: tuple[Fleet, Path]) -> Iterator[Host]:
    """An echo server inside sat-a's namespace, on its address; killed by pid afterwards."""
    host = fleet[0].host("sat-a")
    proc = subprocess.Popen(
        host.command([sys.executable, "-c", SERVER, host.address, str(PORT)]), stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield host
    finally:
        proc.kill()
        proc.wait(timeout=10)


@needs_root
def test_a_server_in_one_host_is_reachable_from_root_and_from_another_host(
    fleet: tuple[Fleet, Path], server_on_a: Host
) -> None:
    hosts = fleet[0]
    assert [h.name for h in hosts.hosts] == ["sat-a", "sat-b", "sat-c"]
    assert len({h.address for h in hosts.hosts} | {hosts.bridge_address}) == 4
    assert hosts.isolated and hosts.no_split_reason is None

    assert _greeting(server_on_a.address) == b"hello\n"
    from_b = subprocess.run(
        hosts.host("sat-b").command([sys.executable, "-c", CLIENT, server_on_a.address, str(PORT)]), timeout=30
    )
    assert from_b.returncode == 0
    # the server really runs in sat-a's namespace, not in the root one
    assert processes_in(server_on_a.netns or "")


@needs_root
def test_a_cut_host_is_unreachable_until_healed(fleet: tuple[Fleet, Path], server_on_a: Host) -> None:
    hosts = fleet[0]
    hosts.cut("sat-a")
    with pytest.raises(OSError):
        _greeting(server_on_a.address)

    hosts.heal("sat-a")
    deadline = time.monotonic() + HEAL_DEADLINE_S
    while True:
        try:
            assert _greeting(server_on_a.address) == b"hello\n"
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@needs_root
def test_destroy_removes_everything_recorded_and_twice_is_a_no_op(tmp_path: Path) -> None:
    state = tmp_path / "fleet.json"
    try:
        hosts = create_fleet(_tag(), ZONES, state_file=state, use_namespaces=True)
        namespaces = {h.netns for h in hosts.hosts}
        links = {h.link for h in hosts.hosts} | {hosts.bridge}
        assert namespaces <= set(_ip("netns", "list").split())

        said = destroy_fleet(state)
        assert len(said) == 3 + 3 + 1 + 1  # veths, namespaces, bridge, state file
        listed = _ip("netns", "list")
        assert not any(ns in listed for ns in namespaces if ns)
        shown = _ip("-o", "link")
        assert not any(f" {link}:" in shown or f" {link}@" in shown for link in links if link)
        assert not state.exists()
        assert destroy_fleet(state) == []
    finally:
        destroy_fleet(state)


@needs_root
def test_create_again_reuses_a_whole_fleet_and_rebuilds_a_broken_one(fleet: tuple[Fleet, Path]) -> None:
    first, state = fleet
    again = create_fleet(first.tag, ZONES, state_file=state, use_namespaces=True)
    assert again == first

    # as if a crash or a person removed one namespace: the next create rebuilds it all
    _ip("netns", "del", first.hosts[1].netns or "")
    rebuilt = create_fleet(first.tag, ZONES, state_file=state, use_namespaces=True)
    assert [h.address for h in rebuilt.hosts] == [h.address for h in first.hosts]
    assert first.hosts[1].netns in _ip("netns", "list")

    with pytest.raises(FleetError, match="destroy it first"):
        create_fleet(first.tag, ZONES[:2], state_file=state, use_namespaces=True)


def test_loopback_hosts_have_distinct_bindable_addresses_and_cannot_be_cut(tmp_path: Path) -> None:
    state = tmp_path / "fleet.json"
    try:
        hosts = create_fleet(_tag(), ZONES, per_zone=2, state_file=state, use_namespaces=False)
        assert [h.name for h in hosts.hosts] == ["sat-a1", "sat-a2", "sat-b1", "sat-b2", "sat-c1", "sat-c2"]
        addresses = [h.address for h in hosts.hosts]
        assert len(set(addresses)) == 6 and all(a.startswith("127.") and a != "127.0.0.1" for a in addresses)
        assert not hosts.isolated and all(h.netns is None for h in hosts.hosts)
        assert hosts.hosts[0].command(["true"]) == ["true"]
        for address in addresses:
            with socket.socket() as sock:
                sock.bind((address, 0))

        assert hosts.no_split_reason is not None
        with pytest.raises(FleetError, match="network splits need root and network namespaces"):
            hosts.cut("sat-a1")
        assert Fleet.load(state) == hosts
    finally:
        destroy_fleet(state)


def test_host_names_follow_the_zones() -> None:
    assert [h for h, _ in host_names(ZONES)] == ["sat-a", "sat-b", "sat-c"]
    assert host_names(["zone-a"], per_zone=2) == [("sat-a1", "zone-a"), ("sat-a2", "zone-a")]
    with pytest.raises(FleetError, match="distinct"):
        host_names(["east-a", "west-a"])
    with pytest.raises(FleetError, match="tag"):
        create_fleet("Not-A-Tag", ZONES, use_namespaces=False)


@needs_root
def test_a_name_already_taken_is_refused_and_left_alone(tmp_path: Path) -> None:
    tag = _tag()
    state = tmp_path / "fleet.json"
    _ip("link", "add", "name", f"spbr{tag}", "type", "bridge")  # not ours: create_fleet must leave it
    try:
        with pytest.raises(FleetError, match=f"spbr{tag} already exist"):
            create_fleet(tag, ZONES, state_file=state, use_namespaces=True)
        assert not state.exists()
        assert f"spbr{tag}" in _ip("-o", "link")
    finally:
        destroy_fleet(state)
        subprocess.run(["ip", "link", "del", f"spbr{tag}"], capture_output=True)
