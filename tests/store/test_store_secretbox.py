"""The key file behind encryption at rest, and the embedded default store layout."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from streamplane.mothership.store import (
    ClusterType,
    SecretBox,
    SecretDecryptionError,
    Store,
)
from streamplane.mothership.store.secretbox import KEY_FILE_NAME


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    box = SecretBox.in_data_dir(tmp_path / "data")
    key_file = tmp_path / "data" / KEY_FILE_NAME

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    token = box.encrypt("s3cret")
    assert "s3cret" not in token
    assert SecretBox.in_data_dir(tmp_path / "data").decrypt(token) == "s3cret"
    assert [p.name for p in key_file.parent.iterdir()] == [KEY_FILE_NAME]  # no temp left


def test_another_key_cannot_decrypt_and_says_what_to_do(tmp_path: Path) -> None:
    token = SecretBox.in_data_dir(tmp_path / "a").encrypt("s3cret")
    with pytest.raises(SecretDecryptionError, match="restore the key file"):
        SecretBox.in_data_dir(tmp_path / "b").decrypt(token)


def test_a_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    SecretBox.in_data_dir(tmp_path)
    (tmp_path / KEY_FILE_NAME).chmod(0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        SecretBox.in_data_dir(tmp_path)


def test_a_rotated_key_file_still_reads_old_secrets(tmp_path: Path) -> None:
    old = SecretBox.in_data_dir(tmp_path)
    token = old.encrypt("s3cret")
    key_file = tmp_path / KEY_FILE_NAME
    new_key = SecretBox.in_data_dir(tmp_path / "fresh")
    fresh_line = (tmp_path / "fresh" / KEY_FILE_NAME).read_text()
    key_file.write_text(fresh_line + key_file.read_text())

    rotated = SecretBox.in_data_dir(tmp_path)

    assert rotated.decrypt(token) == "s3cret"
    assert new_key.decrypt(rotated.encrypt("next")) == "next"  # new secrets use the new key


def test_the_embedded_store_lives_in_its_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Store.in_data_dir(data) as store:
        assert store.backend == "sqlite"
        store.migrate()
        store.logical_clusters.create(name="a", type=ClusterType.BASIC, kafka_version="4.3.1")
    assert (data / "mothership.db").is_file() and (data / KEY_FILE_NAME).is_file()
    with Store.in_data_dir(data) as reopened:
        assert [c.name for c in reopened.logical_clusters.list()] == ["a"]


def test_the_url_shown_hides_the_password() -> None:
    store = Store(
        "postgresql+psycopg://app:hunter2hunter2@127.0.0.1:5999/sp", secret_box=SecretBox.generate()
    )
    try:
        assert "hunter2" not in store.url and "hunter2" not in repr(store)
        assert store.backend == "postgresql"
    finally:
        store.close()
