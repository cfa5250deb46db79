"""What the gateway needs from the store: SCRAM verifiers of API keys (never the secret)
and each tenant's own Kafka principal, its password encrypted at rest."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

from streamplane.credentials.scram import ScramClient, ScramCredential, ScramError, ScramServer
from streamplane.mothership.store import (
    ClusterType,
    LogicalClusterStatus,
    NotFoundError,
    SecretBox,
    SecretDecryptionError,
    Store,
)
from streamplane.mothership.store.migrate import alembic_config
from streamplane.mothership.store.testing import dump_tables


@pytest.fixture
def cluster_id(store: Store) -> str:
    return store.logical_clusters.create(
        name="orders", type=ClusterType.BASIC, kafka_version="4.3.1"
    ).id


def _scram_login(server_mechanism: str, credential: ScramCredential, user: str,
                 password: str) -> bool:
    """A whole SCRAM exchange between the gateway's client and server halves."""
    client = ScramClient(server_mechanism, user, password)
    server = ScramServer(server_mechanism, decoy_secret=b"d" * 32)
    server.parse_first(client.first())
    server_first = server.first(credential)
    try:
        server_final = server.final(client.final(server_first))
        client.verify(server_final)
    except ScramError:
        return False
    return True


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256"])
def test_a_key_logs_in_with_scram_from_its_stored_verifier(
    store: Store, cluster_id: str, db_url: URL, mechanism: str
) -> None:
    issued = store.api_keys.create(cluster_id)
    key, secret = issued.api_key.id, issued.secret.get_secret_value()
    found = store.api_keys.scram_credential(key, mechanism)
    assert found is not None
    api_key, credential = found
    assert api_key == issued.api_key
    assert credential.mechanism == mechanism and credential.iterations >= 4096
    assert _scram_login(mechanism, credential, key, secret)
    assert not _scram_login(mechanism, credential, key, secret + "x")
    # what lies in the database is the verifier, not the secret
    assert secret not in dump_tables(db_url)
    assert base64.urlsafe_b64encode(credential.stored_key).decode() in dump_tables(db_url)

    assert store.api_keys.scram_credential(key, "SCRAM-SHA-1") is None
    assert store.api_keys.scram_credential("AKDOESNOTEXIST00", mechanism) is None
    store.api_keys.revoke(key)
    assert store.api_keys.scram_credential(key, mechanism) is None


def test_keys_of_a_deleted_cluster_have_no_scram_login(store: Store, cluster_id: str) -> None:
    key = store.api_keys.create(cluster_id).api_key.id
    assert store.api_keys.scram_credential(key, "SCRAM-SHA-512") is not None
    store.logical_clusters.mark_deleting(cluster_id, expected_generation=None)
    store.logical_clusters.set_status(cluster_id, LogicalClusterStatus.DELETED, "")
    assert store.api_keys.scram_credential(key, "SCRAM-SHA-512") is None


def test_a_tenant_has_one_principal_with_an_encrypted_password(
    store: Store, cluster_id: str, db_url: URL
) -> None:
    with pytest.raises(NotFoundError):
        store.tenant_principals.get(cluster_id)
    first = store.tenant_principals.ensure(cluster_id)
    assert first.username == cluster_id
    password = first.password.get_secret_value()
    assert len(password) >= 32 and password not in repr(first)
    assert store.tenant_principals.ensure(cluster_id) == first
    assert store.tenant_principals.get(cluster_id) == first
    assert password not in dump_tables(db_url)

    other = store.logical_clusters.create(name="other", type=ClusterType.STANDARD,
                                          kafka_version="4.3.1").id
    assert store.tenant_principals.ensure(other).password != first.password

    store.tenant_principals.delete(cluster_id)
    store.tenant_principals.delete(cluster_id)
    with pytest.raises(NotFoundError):
        store.tenant_principals.get(cluster_id)
    with pytest.raises(NotFoundError):
        store.tenant_principals.ensure("lkc-nosuch")


def test_a_principal_needs_the_key_file_it_was_sealed_with(
    store: Store, cluster_id: str, db_url: URL
) -> None:
    store.tenant_principals.ensure(cluster_id)
    with Store(db_url, secret_box=SecretBox.generate()) as stranger, pytest.raises(SecretDecryptionError):
        stranger.tenant_principals.get(cluster_id)


def test_keys_made_before_revision_0002_keep_working_with_plain(
    open_store: Callable[..., Store], db_url: URL
) -> None:
    store = open_store()  # makes the SQLite file's directory
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0001")
            conn.execute(text(
                "INSERT INTO logical_clusters (id, name, type, zones, kafka_version, status, "
                "status_reason, generation, created_at, updated_at) VALUES ('lkc-old001', 'old', "
                "'basic', 1, '4.3.1', 'RUNNING', '', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
    finally:
        engine.dispose()
    assert store.schema_revision() == "0001"
    store.migrate()
    assert store.schema_revision() == "0002"
    # a key row as revision 0001 wrote it: a hash and no verifier
    issued = store.api_keys.create("lkc-old001")
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE api_keys SET scram = NULL WHERE id = :id"),
                         {"id": issued.api_key.id})
    finally:
        engine.dispose()
    secret = issued.secret.get_secret_value()
    assert store.api_keys.verify(issued.api_key.id, secret) == issued.api_key
    assert store.api_keys.scram_credential(issued.api_key.id, "SCRAM-SHA-512") is None
    assert store.tenant_principals.ensure("lkc-old001").username == "lkc-old001"
