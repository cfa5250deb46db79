"""The bytes on the channel's topics: PSCs (sealed when a key is set) and statuses.

A PSC carries its cluster's super-user password, so with an ``encryption_key`` the whole
JSON document is a Fernet token on the wire: the password never appears in the topic's
bytes, and a satellite accepts only PSCs sealed with the key it shares with the mothership.
Statuses hold no secrets and stay plain JSON. The target satellite and generation also
travel as headers, so a satellite can skip other satellites' records without decrypting.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr, ValidationError

from streamplane.channel.source import describe_validation_error, parse_psc
from streamplane.models.psc import PhysicalClusterSpec
from streamplane.models.status import ClusterStatus

SATELLITE_HEADER = "satellite"
GENERATION_HEADER = "generation"
ENCODING_HEADER = "encoding"
ENCODING_FERNET = b"fernet+json"
ENCODING_JSON = b"json"
#: every Fernet token starts with its version byte 0x80 followed by a 64-bit timestamp
FERNET_PREFIX = b"gAAAAA"

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class Record:
    """One record of a channel topic, as the codec sees it."""

    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]

    def header(self, name: str) -> str | None:
        raw = self.headers.get(name)
        return raw.decode("utf-8", "replace") if raw is not None else None


def headers_dict(headers: Sequence[tuple[str, bytes | None]] | None) -> dict[str, bytes]:
    return {k: v for k, v in headers or () if v is not None}


class DesiredCodec:
    """PSC <-> value bytes and headers of the ``desired`` topic."""

    def __init__(self, encryption_key: SecretStr | None) -> None:
        self._fernet = Fernet(encryption_key.get_secret_value()) if encryption_key else None

    def encode(self, psc: PhysicalClusterSpec) -> tuple[bytes, Headers]:
        if psc.satellite is None:
            raise ValueError(f"cluster {psc.id} has no satellite; set `satellite` to the name "
                             "of the satellite that should run it")
        doc = json.dumps(psc.to_wire(), sort_keys=True).encode()
        value = self._fernet.encrypt(doc) if self._fernet else doc
        return value, [
            (SATELLITE_HEADER, ",".join(psc.satellites()).encode()),
            (GENERATION_HEADER, str(psc.generation).encode()),
            (ENCODING_HEADER, ENCODING_FERNET if self._fernet else ENCODING_JSON),
        ]

    def decode(self, value: bytes) -> PhysicalClusterSpec:
        """The PSC in ``value``; raises ValueError with a message an operator can act on."""
        sealed = value.startswith(FERNET_PREFIX)
        if sealed and self._fernet is None:
            raise ValueError("the PSC is encrypted but this side has no channel encryption_key; "
                             "give it the mothership's key")
        if self._fernet is not None:
            if not sealed:
                raise ValueError("the PSC is not encrypted but this side requires encrypted "
                                 "desired state; give the mothership the same encryption_key")
            try:
                value = self._fernet.decrypt(value)
            except InvalidToken:
                raise ValueError("the PSC could not be decrypted with this side's channel "
                                 "encryption_key (the mothership sealed it with another key)"
                                 ) from None
        try:
            data = json.loads(value)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"the PSC is not valid JSON: {exc}") from None
        return parse_psc(data)


def encode_status(status: ClusterStatus) -> bytes:
    return status.model_dump_json().encode()


def decode_status(value: bytes) -> ClusterStatus:
    try:
        return ClusterStatus.model_validate_json(value)
    except ValidationError as exc:
        raise ValueError(describe_validation_error(exc)) from None


def status_key(satellite: str, cluster_id: str) -> bytes:
    return f"{satellite}/{cluster_id}".encode()


def split_status_key(key: bytes) -> tuple[str, str]:
    """``b"<satellite>/<cluster id>"`` -> ``(satellite, cluster id)``; ValueError if malformed."""
    satellite, sep, cluster_id = key.decode("utf-8").partition("/")
    if not sep or not satellite or not cluster_id:
        raise ValueError(f"status key {key!r} is not '<satellite>/<cluster id>'")
    return satellite, cluster_id


def check_satellite_name(name: str) -> str:
    if not name or "/" in name or "," in name:
        raise ValueError(f"satellite name {name!r} must be non-empty and may not contain '/' or ','")
    return name


def satellites_of(header: str | None) -> set[str] | None:
    """The satellites a desired record's header names (every one that runs a node of the
    cluster); None when the record names none."""
    return None if header is None else set(header.split(","))
