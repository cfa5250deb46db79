"""Tenant namespacing: the prefix goes on every name on the way in and comes off on the way out.

Kafka's message schemas tag every field that holds a topic name, a group id or a
transactional id (``entityType``). ``rename`` walks a message along its schema and
rewrites exactly those fields. On the way out, an entry whose own name does not carry the
tenant's prefix is dropped, which is what filters listings (all topics, all groups, all
transactions) down to the tenant. Names that hide inside opaque bytes (the consumer
protocol's subscriptions and assignments) or whose kind depends on another field (config
resources, coordinator keys) are handled next to it.

Topic ids cannot be prefixed, so ``TenantTopics`` remembers which ids belong to the
tenant; a request naming any other id gets an id that exists nowhere instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kafka.protocol.consumer import ConsumerProtocolAssignment, ConsumerProtocolSubscription

from streamplane.gateway.protocol import FieldSpec

#: the entity types that live in a tenant's namespace
NAME_ENTITIES = frozenset({"topicName", "groupId", "transactionalId"})
#: config resource types (DescribeConfigs & co.) that name a tenant's resource
TOPIC_RESOURCE = 2
GROUP_RESOURCE = 32
TENANT_CONFIG_RESOURCES = frozenset({TOPIC_RESOURCE, GROUP_RESOURCE})
CONSUMER_PROTOCOL = "consumer"

Rename = Callable[[str], str | None]


@dataclass(frozen=True)
class Namespace:
    """One tenant's names on the shared cluster: ``prefix + name``."""

    prefix: str

    def inward(self, name: str) -> str:
        return self.prefix + name

    def outward(self, name: str) -> str | None:
        """The tenant's name for a cluster name, or None if it is not the tenant's."""
        if name.startswith(self.prefix):
            return name[len(self.prefix):]
        return None

    def scrub(self, text: str) -> str:
        """Error messages quote cluster names; show the tenant its own."""
        return text.replace(self.prefix, "") if self.prefix else text


def rename(obj: Any, fields: tuple[FieldSpec, ...], version: int, rename: Rename,
           scrub: Callable[[str], str] | None = None) -> bool:
    """Rewrite every tenant-named field under ``obj``; drop array entries whose own name
    ``rename`` refuses (returns None). Returns False if ``obj`` itself has such a name."""
    keep = True
    for f in fields:
        if not f.present(version):
            continue
        if f.entity in NAME_ENTITIES:
            value = getattr(obj, f.attr)
            if value is None:
                continue
            if f.kind == "scalar":
                new = rename(value)
                if new is None:
                    keep = False
                else:
                    setattr(obj, f.attr, new)
            elif f.kind == "array":
                setattr(obj, f.attr, [n for n in map(rename, value) if n is not None])
        elif f.kind == "struct":
            value = getattr(obj, f.attr)
            if value is not None and not rename_struct(value, f, version, rename, scrub):
                setattr(obj, f.attr, None)
        elif f.kind == "struct_array":
            value = getattr(obj, f.attr)
            if value:
                setattr(obj, f.attr, [e for e in value
                                      if rename_struct(e, f, version, rename, scrub)])
        elif scrub is not None and f.attr == "error_message":
            value = getattr(obj, f.attr)
            if value:
                setattr(obj, f.attr, scrub(value))
    return keep


def rename_struct(obj: Any, f: FieldSpec, version: int, fn: Rename,
                  scrub: Callable[[str], str] | None) -> bool:
    return rename(obj, f.fields, version, fn, scrub)


def structs_with(obj: Any, fields: tuple[FieldSpec, ...], version: int,
                 attrs: tuple[str, ...]) -> Iterator[tuple[Any, tuple[FieldSpec, ...]]]:
    """Every struct under (and including) ``obj`` that has all of ``attrs`` at ``version``,
    with its fields."""
    present = {f.attr for f in fields if f.present(version)}
    if all(a in present for a in attrs):
        yield obj, fields
    for f in fields:
        if not f.present(version) or f.kind not in ("struct", "struct_array"):
            continue
        value = getattr(obj, f.attr)
        if value is None:
            continue
        for item in (value if f.kind == "struct_array" else [value]):
            yield from structs_with(item, f.fields, version, attrs)


def topic_name_attr(fields: tuple[FieldSpec, ...], version: int) -> str | None:
    return next((f.attr for f in fields
                 if f.entity == "topicName" and f.kind == "scalar" and f.present(version)), None)


# ---- topic ids --------------------------------------------------------------------------


@dataclass
class TenantTopics:
    """The topic ids known to belong to one tenant (learnt from what Kafka answered it)."""

    names: dict[uuid.UUID, str] = field(default_factory=dict)

    def learn(self, topic_id: uuid.UUID, name: str) -> None:
        self.names[topic_id] = name

    def owns(self, topic_id: uuid.UUID) -> bool:
        return topic_id in self.names

    def forget(self, topic_id: uuid.UUID) -> None:
        self.names.pop(topic_id, None)


def topic_ids(obj: Any, fields: tuple[FieldSpec, ...], version: int) -> list[Any]:
    """Every struct under ``obj`` that carries a (non-zero) topic id."""
    return [s for s, _ in structs_with(obj, fields, version, ("topic_id",))
            if s.topic_id is not None]


def learn_topic_ids(ns: Namespace, topics: TenantTopics, obj: Any,
                    fields: tuple[FieldSpec, ...], version: int) -> None:
    """Remember the ids of the tenant's topics that a response names (before renaming)."""
    for struct, struct_fields in structs_with(obj, fields, version, ("topic_id",)):
        attr = topic_name_attr(struct_fields, version)
        name = getattr(struct, attr) if attr else None
        if struct.topic_id is not None and name and ns.outward(name) is not None:
            topics.learn(struct.topic_id, name)


# ---- the consumer protocol --------------------------------------------------------------


def _consumer_data(cls: Any, data: bytes, edit: Callable[[Any], None]) -> bytes:
    """Decode ``data`` as ``cls`` (a consumer protocol struct), edit it, re-encode it.
    Anything that does not decode is left as it was: it is not ours to read."""
    if not data:
        return data
    try:
        decoded = cls.decode(data)
        edit(decoded)
        return bytes(decoded.encode(header=True))
    except Exception:
        return data


def subscription(data: bytes, fn: Rename) -> bytes:
    def edit(sub: Any) -> None:
        sub.topics = [n for n in map(fn, sub.topics or []) if n is not None]
        if sub.version >= 1 and sub.owned_partitions:
            sub.owned_partitions = _renamed_partitions(sub.owned_partitions, fn)

    return _consumer_data(ConsumerProtocolSubscription, data, edit)


def assignment(data: bytes, fn: Rename) -> bytes:
    def edit(assign: Any) -> None:
        assign.assigned_partitions = _renamed_partitions(assign.assigned_partitions or [], fn)

    return _consumer_data(ConsumerProtocolAssignment, data, edit)


def _renamed_partitions(partitions: list[Any], fn: Rename) -> list[Any]:
    kept = []
    for tp in partitions:
        name = fn(tp.topic)
        if name is not None:
            tp.topic = name
            kept.append(tp)
    return kept
