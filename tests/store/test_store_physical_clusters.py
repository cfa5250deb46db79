"""Physical clusters and satellites: PSCs with their password encrypted at rest."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

from streamplane.credentials.cluster_ca import CertificateAuthority
from streamplane.models import ClusterState, ClusterStatus
from streamplane.models.psc import ClusterTls
from streamplane.mothership.store import (
    AlreadyExistsError,
    ClusterType,
    ConflictError,
    NotFoundError,
    PhysicalClusterKind,
    SecretBox,
    SecretDecryptionError,
    Store,
)
from streamplane.mothership.store.testing import ManualClock, sample_psc

PASSWORD = "correct-horse-battery-staple-42"


def _raw_spec(url: URL, cluster_id: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            value = conn.execute(
                text("SELECT spec FROM physical_clusters WHERE id = :id"), {"id": cluster_id}
            ).scalar_one()
    finally:
        engine.dispose()
    return value if isinstance(value, str) else json.dumps(value)


@pytest.fixture
def satellite(store: Store) -> str:
    store.satellites.upsert("sat-a", zone="zone-a", capacity={"max_brokers": 6})
    return "sat-a"


def test_satellites_register_heartbeat_and_list_by_last_seen(
    store: Store, clock: ManualClock
) -> None:
    registered = store.satellites.upsert(
        "sat-a", zone="zone-a", capacity={"max_brokers": 6, "memory_mb": 8192}
    )
    assert registered.last_seen_at == registered.created_at == clock.now
    assert registered.capacity == {"max_brokers": 6, "memory_mb": 8192}
    store.satellites.upsert("sat-b", zone="zone-b", capacity={"max_brokers": 3})

    clock.advance(timedelta(minutes=2))
    beat = store.satellites.heartbeat("sat-a", {"clusters": ["pkc-abc123"]})
    assert beat.last_seen_at == clock.now and beat.status == {"clusters": ["pkc-abc123"]}
    again = store.satellites.upsert("sat-a", zone="zone-a", capacity={"max_brokers": 8})
    assert again.created_at == registered.created_at  # an upsert keeps its birthday
    assert again.capacity == {"max_brokers": 8}
    assert again.status == {"clusters": ["pkc-abc123"]}  # a refresh without a status keeps it
    moved = store.satellites.upsert("sat-a", zone="zone-c", capacity={"max_brokers": 8}, status={})
    assert moved.zone == "zone-c" and moved.status == {}

    recent = store.satellites.list(seen_since=clock.now - timedelta(minutes=1))
    assert [s.name for s in recent] == ["sat-a"]
    assert [s.name for s in store.satellites.list()] == ["sat-a", "sat-b"]
    with pytest.raises(NotFoundError):
        store.satellites.heartbeat("sat-zzz")


def test_psc_round_trips_with_its_password_encrypted_at_rest(
    store: Store, satellite: str, db_url: URL, secret_box: SecretBox
) -> None:
    psc = sample_psc(satellite=satellite, password=PASSWORD)

    created = store.physical_clusters.create(psc, kind=PhysicalClusterKind.DEDICATED)

    assert created.spec == psc  # generation 1 on both sides
    assert created.spec.super_user.password.get_secret_value() == PASSWORD
    assert store.physical_clusters.get(psc.id) == created
    raw = _raw_spec(db_url, psc.id)
    assert PASSWORD not in raw
    stored = json.loads(raw)
    token = stored["super_user"]["password"]
    assert token.startswith("fernet:")
    assert secret_box.decrypt(token.removeprefix("fernet:")) == PASSWORD
    assert stored["brokers"][1]["zone"] == "zone-b"  # the rest stays readable


def test_a_store_with_another_key_cannot_read_the_password(
    store: Store, satellite: str, open_store: Callable[..., Store]
) -> None:
    store.physical_clusters.create(
        sample_psc(satellite=satellite, password=PASSWORD), kind=PhysicalClusterKind.SHARED
    )
    stranger = open_store(secret_box=SecretBox.generate())
    with pytest.raises(SecretDecryptionError, match="key file"):
        stranger.physical_clusters.get("pkc-abc123")


def test_spec_updates_bump_generation_and_stale_writers_conflict(
    store: Store, satellite: str, open_store: Callable[..., Store]
) -> None:
    psc = sample_psc(satellite=satellite, password=PASSWORD)
    store.physical_clusters.create(psc, kind=PhysicalClusterKind.DEDICATED)
    other = open_store()
    a = store.physical_clusters.get(psc.id)
    b = other.physical_clusters.get(psc.id)

    bigger = psc.model_copy(update={"broker_configs": {"num.partitions": "6"}})
    updated = store.physical_clusters.update_spec(bigger, expected_generation=a.generation)
    assert updated.generation == updated.spec.generation == 2
    assert updated.spec.broker_configs == {"num.partitions": "6"}
    with pytest.raises(ConflictError):
        other.physical_clusters.update_spec(psc, expected_generation=b.generation)
    assert other.physical_clusters.get(psc.id) == updated


def test_reported_status_is_kept_without_touching_the_generation(
    store: Store, satellite: str
) -> None:
    psc = sample_psc(satellite=satellite, password=PASSWORD)
    store.physical_clusters.create(psc, kind=PhysicalClusterKind.DEDICATED)
    status = ClusterStatus(
        id=psc.id, satellite=satellite, status=ClusterState.HEALTHY, generation=1,
        observed_generation=1, kafka_version=psc.kafka_version, bootstrap="127.0.0.1:20001",
    )

    seen = store.physical_clusters.record_status(psc.id, status)

    assert seen.observed_status == status
    assert (seen.observed_generation, seen.generation) == (1, 1)
    assert store.physical_clusters.get(psc.id).observed_status == status
    with pytest.raises(NotFoundError):
        store.physical_clusters.record_status(
            "pkc-other1", status.model_copy(update={"id": "pkc-other1"})
        )


def test_removing_a_physical_cluster_unlinks_its_logical_clusters(
    store: Store, satellite: str
) -> None:
    psc = sample_psc(satellite=satellite, password=PASSWORD)
    store.physical_clusters.create(psc, kind=PhysicalClusterKind.DEDICATED)
    lkc = store.logical_clusters.create(
        name="orders", type=ClusterType.DEDICATED, kafka_version="4.3.1", cku=1
    )
    store.logical_clusters.set_status(lkc.id, lkc.status, physical_cluster_id=psc.id)
    with pytest.raises(ConflictError, match="still runs 1 physical cluster"):
        store.satellites.remove(satellite)
    with pytest.raises(ConflictError, match="marked for deletion"):
        store.physical_clusters.remove(psc.id)

    deleting = store.physical_clusters.mark_deleting(psc.id)
    assert deleting.deleting and deleting.generation == deleting.spec.generation == 2
    assert store.physical_clusters.list(include_deleting=False) == []
    with pytest.raises(ConflictError):
        store.physical_clusters.update_spec(psc, expected_generation=None)
    store.physical_clusters.remove(psc.id)

    with pytest.raises(NotFoundError):
        store.physical_clusters.get(psc.id)
    # ON DELETE SET NULL: proves foreign keys are enforced on SQLite too
    assert store.logical_clusters.get(lkc.id).physical_cluster_id is None
    store.satellites.remove(satellite)
    assert store.satellites.list() == []


def test_physical_cluster_needs_a_known_satellite_and_a_fresh_id(
    store: Store, satellite: str
) -> None:
    with pytest.raises(NotFoundError, match="satellite 'sat-x'"):
        store.physical_clusters.create(
            sample_psc(satellite="sat-x", password=PASSWORD), kind=PhysicalClusterKind.SHARED
        )
    psc = sample_psc(satellite=satellite, password=PASSWORD)
    store.physical_clusters.create(psc, kind=PhysicalClusterKind.SHARED)
    with pytest.raises(AlreadyExistsError, match="pkc-abc123"):
        store.physical_clusters.create(psc, kind=PhysicalClusterKind.SHARED)
    assert [p.id for p in store.physical_clusters.list(satellite=satellite)] == [psc.id]


def test_the_cluster_ca_key_is_encrypted_at_rest_too(
    store: Store, satellite: str, db_url: URL, secret_box: SecretBox
) -> None:
    ca = CertificateAuthority.new("pkc-ca")
    psc = sample_psc(satellite=satellite, password=PASSWORD).model_copy(
        update={"tls": ClusterTls(ca_cert=ca.cert_pem, ca_key=SecretStr(ca.key_pem))})
    created = store.physical_clusters.create(psc, kind=PhysicalClusterKind.DEDICATED)
    assert created.spec.tls is not None and created.spec.tls.ca_key.get_secret_value() == ca.key_pem
    raw = _raw_spec(db_url, psc.id)
    assert "PRIVATE KEY" not in raw and ca.cert_pem.splitlines()[1] in raw  # the certificate is public
    token = json.loads(raw)["tls"]["ca_key"]
    assert secret_box.decrypt(token.removeprefix("fernet:")) == ca.key_pem
