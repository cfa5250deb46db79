"""Channel config, payload sealing and the status sink's manners, without Kafka."""

from __future__ import annotations

import asyncio
import os
import time
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from streamplane.channel import ChannelConfig, ChannelError, KafkaStatusSink
from streamplane.channel.codec import DesiredCodec
from streamplane.models.psc import PhysicalClusterSpec
from streamplane.models.status import ClusterState, ClusterStatus
from streamplane.satellite.local_channel import channel_config_for_local as config_for_local

pytestmark = pytest.mark.timeout(60)
PASSWORD = "s3cret-Pa55word-for-tests"


def make_config(**kw: object) -> ChannelConfig:
    return ChannelConfig.model_validate({
        "bootstrap": "127.0.0.1:9092", "username": "admin", "password": "pw-123456789", **kw})


def make_psc(password: str = PASSWORD) -> PhysicalClusterSpec:
    return PhysicalClusterSpec(id="orders", satellite="sat-a", generation=3,
                               brokers=({"id": 1},), super_user={"password": password})


def test_config_file_round_trips_with_secrets_and_is_private(tmp_path: Path) -> None:
    key = ChannelConfig.new_encryption_key()
    cfg = make_config(encryption_key=key.get_secret_value(), desired_topic="d1")
    path = tmp_path / "channel.json"
    cfg.save(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert "pw-123456789" in path.read_text()
    loaded = ChannelConfig.load(path)
    assert loaded == cfg
    assert loaded.encryption_key is not None
    assert loaded.encryption_key.get_secret_value() == key.get_secret_value()
    assert "pw-123456789" not in repr(loaded)


def test_config_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "channel.json"
    make_config().save(path)
    path.chmod(0o644)
    with pytest.raises(ChannelError, match="chmod 600"):
        ChannelConfig.load(path)


def test_config_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ChannelError, match="no channel config"):
        ChannelConfig.load(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="Fernet key"):
        make_config(encryption_key="not-a-key")
    with pytest.raises(ValueError, match="not a Kafka topic name"):
        make_config(status_topic="a topic")
    with pytest.raises(ChannelError, match="streamplane up"):
        config_for_local(tmp_path)


def test_sealed_psc_hides_the_password_and_opens_with_the_key() -> None:
    key = ChannelConfig.new_encryption_key()
    value, headers = DesiredCodec(key).encode(make_psc())
    assert PASSWORD.encode() not in value
    assert dict(headers)["satellite"] == b"sat-a" and dict(headers)["generation"] == b"3"
    back = DesiredCodec(key).decode(value)
    assert back == make_psc()
    assert back.super_user.password.get_secret_value() == PASSWORD


@pytest.mark.parametrize(("writer_key", "reader_key", "why"), [
    ("a", "b", "could not be decrypted"),
    (None, "b", "not encrypted"),
    ("a", None, "is encrypted but this side has no channel encryption_key"),
])
def test_mismatched_keys_are_explained(writer_key: str | None, reader_key: str | None,
                                       why: str) -> None:
    keys = {"a": ChannelConfig.new_encryption_key(), "b": ChannelConfig.new_encryption_key()}
    writer = DesiredCodec(keys[writer_key] if writer_key else None)
    reader = DesiredCodec(keys[reader_key] if reader_key else None)
    value, _ = writer.encode(make_psc())
    with pytest.raises(ValueError, match=why):
        reader.decode(value)


def test_invalid_psc_is_explained() -> None:
    with pytest.raises(ValueError, match="not valid JSON"):
        DesiredCodec(None).decode(b"{oops")
    with pytest.raises(ValueError, match="brokers: a cluster needs at least one broker"):
        DesiredCodec(None).decode(b'{"id": "x", "brokers": [], "super_user": '
                                  b'{"password": "xxxxxxxxxxxxxxxx"}}')


def test_a_psc_without_satellite_cannot_be_published() -> None:
    unplaced = PhysicalClusterSpec(id="orders", brokers=({"id": 1},),
                                   super_user={"password": PASSWORD})
    with pytest.raises(ValueError, match="has no satellite"):
        DesiredCodec(None).encode(unplaced)


def _secret_fields(model: type[BaseModel], where: str = "") -> list[str]:
    found = []
    for name, info in model.model_fields.items():
        text = f"{info.annotation}"
        if "SecretStr" in text or any(w in name for w in ("password", "secret", "key")):
            found.append(where + name)
        for arg in typing.get_args(info.annotation) or (info.annotation,):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                found += _secret_fields(arg, f"{where}{name}.")
    return found


def test_status_records_hold_no_secrets() -> None:
    """Statuses go on the wire unencrypted; that is only right while they carry no secret."""
    assert _secret_fields(ClusterStatus) == []


def test_status_sink_does_not_stall_a_satellite_when_the_system_cluster_is_down() -> None:
    cfg = make_config(bootstrap="127.0.0.1:1")  # nothing listens on port 1
    status = ClusterStatus(id="orders", satellite="sat-a", status=ClusterState.HEALTHY,
                           generation=1, kafka_version="4.3.1")

    async def main() -> tuple[float, float]:
        sink = KafkaStatusSink(cfg, "sat-a", ack_timeout_s=0.5)
        try:
            t0 = time.monotonic()
            await sink.publish(status)
            first = time.monotonic() - t0
            assert not sink.reachable
            t0 = time.monotonic()
            await sink.publish(status)
            await sink.forget("orders")
            return first, time.monotonic() - t0
        finally:
            await sink.close(timeout=0.5)

    first, later = asyncio.run(main())
    assert 0.4 < first < 3.0
    assert later < 0.2


def test_a_satellite_publishes_only_its_own_statuses() -> None:
    status = ClusterStatus(id="orders", satellite="sat-b", status=ClusterState.HEALTHY,
                           generation=1, kafka_version="4.3.1")

    async def main() -> None:
        sink = KafkaStatusSink(make_config(bootstrap="127.0.0.1:1"), "sat-a")
        try:
            with pytest.raises(ValueError, match="belongs to satellite 'sat-b'"):
                await sink.publish(status)
        finally:
            await sink.close(timeout=0.5)

    asyncio.run(main())
    with pytest.raises(ValueError, match="may not contain '/'"):
        KafkaStatusSink(make_config(), "a/b")


def test_secret_str_key_accepted() -> None:
    cfg = make_config(encryption_key=SecretStr(ChannelConfig.new_encryption_key()
                                               .get_secret_value()))
    assert cfg.encryption_key is not None
