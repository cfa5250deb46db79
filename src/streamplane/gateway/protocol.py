"""Kafka wire protocol for the gateway: framing, and every request and response as an object.

The message classes and their schemas come from kafka-python 3.x, which generates them
from Apache Kafka's own JSON message definitions (``kafka.protocol.schemas.resources``).
That JSON is also what the gateway walks to find the names it rewrites: each field says
whether it holds a topic name, a group id or a transactional id (``entityType``), so one
walker (see ``namespace.py``) covers every API instead of a hand-written rewrite per
message. This module only wraps those classes in a small typed surface.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

import kafka.protocol.admin as kp_admin
import kafka.protocol.consumer as kp_consumer
import kafka.protocol.metadata as kp_metadata
import kafka.protocol.producer as kp_producer
import kafka.protocol.sasl as kp_sasl
from kafka.protocol.api_key import ApiKey
from kafka.protocol.api_message import ApiMessage

from streamplane.gateway import jar_schemas

#: the largest frame a client may send; Kafka's own socket.request.max.bytes default
MAX_FRAME_BYTES = 100 * 1024 * 1024

VersionRange = tuple[int, int]
FieldKind = Literal["scalar", "array", "struct", "struct_array"]


class ErrorCode:
    """The Kafka error codes the gateway itself answers with."""

    NONE = 0
    UNKNOWN_TOPIC_OR_PARTITION = 3
    CLUSTER_AUTHORIZATION_FAILED = 31
    UNSUPPORTED_SASL_MECHANISM = 33
    ILLEGAL_SASL_STATE = 34
    UNSUPPORTED_VERSION = 35
    INVALID_REQUEST = 42
    SASL_AUTHENTICATION_FAILED = 58
    UNKNOWN_TOPIC_ID = 100
    INVALID_REGULAR_EXPRESSION = 128


class ProtocolError(Exception):
    """The peer sent something that is not a Kafka request or response we can read."""


def parse_versions(text: str | None) -> VersionRange | None:
    """Kafka's JSON version syntax: ``"3+"``, ``"0-7"``, ``"5"`` or ``"none"``."""
    if text is None or not text.strip() or text.strip() == "none":
        return None
    text = text.strip()
    if text.endswith("+"):
        return int(text[:-1]), 32767
    if "-" in text:
        low, high = text.split("-")
        return int(low), int(high)
    return int(text), int(text)


def underscore(name: str) -> str:
    """kafka-python's attribute name for a JSON field name (``TopicId`` -> ``topic_id``)."""
    return "".join(("_" + c.lower()) if c.isupper() and i else c.lower() for i, c in enumerate(name))


@dataclass(frozen=True)
class FieldSpec:
    """One field of a message schema, as much of it as rewriting needs."""

    attr: str
    kind: FieldKind
    type: str
    versions: VersionRange
    entity: str | None
    fields: tuple[FieldSpec, ...]

    def present(self, version: int) -> bool:
        return self.versions[0] <= version <= self.versions[1]

    @classmethod
    def parse(cls, json: Mapping[str, Any]) -> FieldSpec:
        type_ = str(json["type"])
        children = tuple(cls.parse(f) for f in json.get("fields", ()))
        kind: FieldKind
        if type_.startswith("[]"):
            kind = "struct_array" if children else "array"
        else:
            kind = "struct" if children else "scalar"
        versions = parse_versions(json.get("versions")) or (-1, -1)
        return cls(underscore(str(json["name"])), kind, type_, versions, json.get("entityType"),
                   children)

    def child(self, attr: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.attr == attr), None)


@dataclass(frozen=True)
class ApiSpec:
    """One Kafka API: its request and response classes and their schemas."""

    key: int
    name: str
    request: Any
    response: Any
    #: the versions the schema defines (kafka-python's classes pretend they start at 0)
    versions: VersionRange
    request_fields: tuple[FieldSpec, ...]
    response_fields: tuple[FieldSpec, ...]

    def request_field(self, attr: str) -> FieldSpec | None:
        return next((f for f in self.request_fields if f.attr == attr), None)

    def response_field(self, attr: str) -> FieldSpec | None:
        return next((f for f in self.response_fields if f.attr == attr), None)

    def readable(self, version: int) -> bool:
        return self.versions[0] <= version <= self.versions[1]


def _message_classes() -> Iterator[Any]:
    for module in (kp_admin, kp_consumer, kp_metadata, kp_producer, kp_sasl):
        for name in getattr(module, "__all__", ()):
            cls = getattr(module, name)
            if isinstance(cls, type) and issubclass(cls, ApiMessage) and cls is not ApiMessage:
                yield cls
    # the KIP-848 consumer group APIs, which kafka-python has no schema for
    yield from jar_schemas.message_classes()


def _build_registry() -> Mapping[int, ApiSpec]:
    requests: dict[int, Any] = {}
    responses: dict[int, Any] = {}
    for cls in _message_classes():
        (requests if cls.is_request() else responses)[int(cls.API_KEY)] = cls
    specs = {}
    for key, request in requests.items():
        response = responses.get(key)
        versions = parse_versions(request.json.get("validVersions"))
        if response is None or versions is None:
            continue
        try:
            name = ApiKey(key).name
        except ValueError:
            name = str(request.json["name"]).removesuffix("Request")
        specs[key] = ApiSpec(
            key=key, name=name, request=request, response=response, versions=versions,
            request_fields=tuple(FieldSpec.parse(f) for f in request.json["fields"]),
            response_fields=tuple(FieldSpec.parse(f) for f in response.json["fields"]),
        )
    return MappingProxyType(specs)


#: every API kafka-python has a schema for, by API key
APIS: Mapping[int, ApiSpec] = _build_registry()


def api_name(key: int) -> str:
    spec = APIS.get(key)
    if spec is not None:
        return spec.name
    try:
        return str(ApiKey(key).name)
    except ValueError:
        return f"api-{key}"


# ---- framing ----------------------------------------------------------------------------


async def read_frame(reader: asyncio.StreamReader, limit: int = MAX_FRAME_BYTES) -> bytes:
    """One size-prefixed frame; IncompleteReadError at a clean end of stream."""
    head = await reader.readexactly(4)
    (size,) = struct.unpack(">i", head)
    if size < 0 or size > limit:
        raise ProtocolError(f"frame of {size} bytes (the limit is {limit})")
    return await reader.readexactly(size)


def frame(payload: bytes | bytearray) -> bytes:
    return struct.pack(">i", len(payload)) + bytes(payload)


# ---- requests ---------------------------------------------------------------------------


@dataclass
class Request:
    """A request as a client sent it. ``body`` is None when the gateway cannot read it
    (an API or version without a schema)."""

    api_key: int
    version: int
    correlation_id: int
    client_id: str | None
    body: Any
    size: int

    @property
    def spec(self) -> ApiSpec | None:
        return APIS.get(self.api_key)

    @property
    def name(self) -> str:
        return api_name(self.api_key)

    def expects_response(self) -> bool:
        if self.api_key == ApiKey.Produce and self.body is not None:
            return int(self.body.acks) != 0
        return True


def parse_request(payload: bytes) -> Request:
    if len(payload) < 8:
        raise ProtocolError(f"a request of {len(payload)} bytes is too short for a header")
    api_key, version, correlation_id = struct.unpack_from(">hhi", payload)
    spec = APIS.get(api_key)
    body = None
    client_id = None
    if spec is not None and spec.readable(version):
        try:
            body = spec.request.decode(payload, version=version, header=True)
        except Exception as exc:  # kafka-python raises ValueError, struct.error, IndexError...
            raise ProtocolError(f"cannot read {spec.name} v{version}: {exc!r}") from exc
        client_id = body.header.client_id
    else:
        client_id = _client_id(payload)
    return Request(api_key, version, correlation_id, client_id, body, len(payload))


def _client_id(payload: bytes) -> str | None:
    if len(payload) < 10:
        return None
    (length,) = struct.unpack_from(">h", payload, 8)
    if length < 0 or 10 + length > len(payload):
        return None
    return payload[10:10 + length].decode("utf-8", "replace")


def encode_request(body: Any, version: int, correlation_id: int, client_id: str | None) -> bytes:
    """A framed request with a header; ``body`` was decoded or built at ``version``."""
    if version != body.API_VERSION:
        raise ValueError(f"a v{body.API_VERSION} message cannot be sent as v{version}")
    body.with_header(correlation_id=correlation_id, client_id=client_id)
    return bytes(body.encode(header=True, framed=True))


# ---- responses --------------------------------------------------------------------------


def decode_response(spec: ApiSpec, version: int, payload: bytes) -> Any:
    try:
        return spec.response.decode(payload, version=version, header=True)
    except Exception as exc:
        raise ProtocolError(f"cannot read the {spec.name} v{version} response: {exc!r}") from exc


def response_correlation_id(payload: bytes) -> int:
    if len(payload) < 4:
        raise ProtocolError("a response too short for a header")
    (cid,) = struct.unpack_from(">i", payload)
    return int(cid)


def encode_response(body: Any, version: int, correlation_id: int) -> bytes:
    """A framed response with a header; ``body`` was decoded or built at ``version``."""
    if version != body.API_VERSION:
        raise ValueError(f"a v{body.API_VERSION} message cannot be sent as v{version}")
    body.with_header(correlation_id=correlation_id)
    return bytes(body.encode(header=True, framed=True))


def new_message(cls: Any, version: int, **values: Any) -> Any:
    """A message or nested struct with every field of ``version`` at its default."""
    return cls(version=version, **values)


def error_response(spec: ApiSpec, request: Request, error_code: int, message: str | None = None) -> Any:
    """A response to ``request`` that fails it as a whole with ``error_code``.

    Sets the top-level error code where the API has one; otherwise answers every entry of
    the request's first array with the error (resource by resource, as the broker would),
    copying the fields both sides share (names, resource types, partitions)."""
    version = request.version
    body = new_message(spec.response, version)
    _fail(body, spec.response_fields, version, error_code, message)
    if request.body is None:
        return body
    source = next((f for f in spec.request_fields
                   if f.kind == "struct_array" and f.present(version)), None)
    target = next((f for f in spec.response_fields if f.kind == "struct_array" and f.present(version)
                   and f.child("error_code") is not None), None)
    if source is not None and target is not None:
        items = getattr(request.body, source.attr) or []
        entry_cls = getattr(spec.response, _struct_class_name(target))
        entries = []
        for item in items:
            entry = new_message(entry_cls, version)
            for field in target.fields:
                if field.kind == "scalar" and field.present(version) and source.child(field.attr):
                    setattr(entry, field.attr, getattr(item, field.attr))
            _fail(entry, target.fields, version, error_code, message)
            entries.append(entry)
        setattr(body, target.attr, entries)
    return body


def _fail(obj: Any, fields: tuple[FieldSpec, ...], version: int, error_code: int,
          message: str | None) -> None:
    for field in fields:
        if not field.present(version):
            continue
        if field.attr == "error_code":
            setattr(obj, field.attr, error_code)
        elif field.attr == "error_message" and message is not None:
            setattr(obj, field.attr, message)


def _struct_class_name(field: FieldSpec) -> str:
    return field.type.removeprefix("[]")


def struct_class(message_cls: Any, field: FieldSpec) -> Any:
    """kafka-python's class for the elements of a struct or struct-array field."""
    return getattr(message_cls, _struct_class_name(field))
