"""``availability`` of a new cluster: what it means in zones, and a multi-zone cluster
refused, with nothing created, when the connected satellites span fewer than three zones
(no Kafka: a stub directory stands in for the satellites' announcements)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from streamplane.models.satellite import SatelliteInfo
from streamplane.mothership.api import create_app
from streamplane.mothership.store import Store

from .conftest import TOKEN, App, error_message

MAX_AGE_S = 30.0


@dataclass
class StubDirectory:
    """The satellites that announced themselves, as the mothership's directory keeps them."""

    satellites: list[SatelliteInfo] = field(default_factory=list)

    def all(self) -> list[SatelliteInfo]:
        return list(self.satellites)

    def live(self, max_age_s: float) -> list[SatelliteInfo]:
        now = time.time()
        return [s for s in self.satellites if now - s.updated_at <= max_age_s]

    def connect(self, *zones: str, age_s: float = 0.0) -> None:
        for zone in zones:
            self.satellites.append(SatelliteInfo(
                name=f"sat-{len(self.satellites) + 1}", zone=zone, max_brokers=20, memory_mb=16384,
                updated_at=time.time() - age_s))


@dataclass(frozen=True)
class FleetApp(App):
    directory: StubDirectory = field(default_factory=StubDirectory)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[FleetApp]:
    store = Store.in_data_dir(tmp_path / "mothership")
    store.migrate()
    directory = StubDirectory()
    try:
        app = create_app(store, TOKEN, directory=directory, satellite_max_age_s=MAX_AGE_S)
        with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            yield FleetApp(client, store, directory)
    finally:
        store.close()


def dedicated(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "dedicated", "cku": 1, **extra}


@pytest.mark.parametrize(
    ("extra", "zones", "availability"),
    [
        ({}, 1, "single-zone"),
        ({"availability": "single-zone"}, 1, "single-zone"),
        ({"availability": "multi-zone"}, 3, "multi-zone"),
        ({"zones": 3}, 3, "multi-zone"),
        ({"zones": 1}, 1, "single-zone"),
        ({"availability": "multi-zone", "zones": 3}, 3, "multi-zone"),
    ],
)
def test_availability_sets_the_zones(app: App, extra: dict[str, Any], zones: int, availability: str) -> None:
    r = app.client.post("/v1/clusters", json=dedicated("c", **extra))
    assert r.status_code == 202, r.text
    created = r.json()["cluster"]
    assert (created["zones"], created["availability"]) == (zones, availability)
    shown = app.client.get("/v1/clusters/c").json()
    assert (shown["zones"], shown["availability"]) == (zones, availability)
    assert [c["availability"] for c in app.client.get("/v1/clusters").json()] == [availability]


@pytest.mark.parametrize(("availability", "zones"), [("multi-zone", 1), ("single-zone", 3)])
def test_availability_and_zones_that_disagree_are_refused(app: App, availability: str, zones: int) -> None:
    r = app.client.post("/v1/clusters", json=dedicated("c", availability=availability, zones=zones))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_request"
    assert f"availability {availability} means zones {4 - zones}, but zones is {zones}" in error_message(r)
    assert app.cluster_count() == 0


def test_an_unknown_availability_names_the_allowed_ones(app: App) -> None:
    r = app.client.post("/v1/clusters", json=dedicated("c", availability="triple-zone"))
    assert r.status_code == 422, r.text
    assert error_message(r) == "availability: Input should be 'single-zone' or 'multi-zone', not 'triple-zone'"
    assert app.cluster_count() == 0


@pytest.mark.parametrize(
    ("zones", "says"),
    [
        ((), "no satellite is connected"),
        (("zone-a",), "they are in 1 (zone-a)"),
        (("zone-a", "zone-a", "zone-b"), "they are in 2 (zone-a, zone-b)"),
    ],
)
def test_multi_zone_is_refused_when_the_fleet_spans_fewer_zones(
        fleet: FleetApp, zones: tuple[str, ...], says: str) -> None:
    fleet.directory.connect(*zones)
    fleet.directory.connect("zone-c", age_s=MAX_AGE_S * 2)  # gone quiet: it does not count
    r = fleet.client.post("/v1/clusters", json=dedicated("wide", availability="multi-zone"),
                          headers={"Idempotency-Key": "k-wide"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "insufficient_capacity"
    message = error_message(r)
    assert message.startswith("cluster wide cannot be multi-zone: that needs connected satellites in 3 zones")
    assert says in message and "or create it single-zone" in message
    assert fleet.cluster_count() == 0
    assert fleet.store.operations.list() == []

    fleet.directory.connect("zone-x", "zone-y", "zone-z")  # the same key may try again once it can
    r = fleet.client.post("/v1/clusters", json=dedicated("wide", availability="multi-zone"),
                          headers={"Idempotency-Key": "k-wide"})
    assert r.status_code == 202, r.text


def test_one_satellite_keeps_zones_3_as_rack_labels_but_is_not_multi_zone(fleet: FleetApp) -> None:
    fleet.directory.connect("local")
    r = fleet.client.post("/v1/clusters", json=dedicated("wide", availability="multi-zone"))
    assert r.status_code == 422 and "with one satellite, zones 3 only labels racks on its host" in error_message(r)
    r = fleet.client.post("/v1/clusters", json=dedicated("racks", zones=3))
    assert r.status_code == 202, r.text
    assert r.json()["cluster"]["zones"] == 3
    single = fleet.client.post("/v1/clusters", json=dedicated("one", availability="single-zone"))
    assert single.status_code == 202, single.text
    assert sorted(c["name"] for c in fleet.client.get("/v1/clusters").json()) == ["one", "racks"]


def test_multi_zone_is_accepted_over_three_zones(fleet: FleetApp) -> None:
    fleet.directory.connect("zone-a", "zone-b", "zone-c")
    r = fleet.client.post("/v1/clusters", json=dedicated("wide", availability="multi-zone"))
    assert r.status_code == 202, r.text
    created = r.json()
    assert (created["cluster"]["zones"], created["cluster"]["availability"]) == (3, "multi-zone")
    assert created["operation"]["kind"] == "create_cluster"
    assert fleet.store.logical_clusters.get_by_name("wide").zones == 3


def test_a_satellite_not_heard_from_within_the_timeout_is_listed_as_lost(fleet: FleetApp) -> None:
    fleet.directory.connect("zone-a")
    fleet.directory.connect("zone-b", age_s=MAX_AGE_S * 2)
    for info in fleet.directory.satellites:  # the reconciler records every satellite it hears of
        fleet.store.satellites.upsert(info.name, zone=info.zone, capacity={"max_brokers": 20})
    fleet.store.satellites.upsert("sat-gone", zone="zone-c", capacity={"max_brokers": 20})
    listed = {x["name"]: x for x in fleet.client.get("/v1/satellites").json()}
    assert {n: x["state"] for n, x in listed.items()} == {
        "sat-1": "connected", "sat-2": "lost", "sat-gone": "lost"}
    assert listed["sat-1"]["host"] == "127.0.0.1" and listed["sat-gone"]["last_seen_at"] is None
