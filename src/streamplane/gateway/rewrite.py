"""What the gateway does to each forwarded request and its response, for one tenant.

``prepare`` turns a client's request into a ``Plan``: the rewritten request to send to
the broker (or a response to give without asking it) and ``finish``, which turns the
broker's response back into what the client should see. The generic part is the schema
walk of ``namespace.rename``; the rest of this module is the few APIs that need more.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from kafka.protocol.api_key import ApiKey

from streamplane.gateway import namespace as ns_
from streamplane.gateway import topic_regex
from streamplane.gateway.auth import TenantIdentity
from streamplane.gateway.brokers import BrokerAddress, BrokerListeners
from streamplane.gateway.namespace import Namespace, TenantTopics
from streamplane.gateway.protocol import (
    APIS,
    ApiSpec,
    ErrorCode,
    FieldSpec,
    Request,
    error_response,
    new_message,
    struct_class,
)

#: how often one connection may look up topic ids it does not know
TOPIC_LOOKUP_INTERVAL_S = 1.0
NOT_YOURS = "only the cluster's own topics and consumer groups can be configured"

Finish = Callable[[Any], Awaitable[Any]]


@dataclass
class Plan:
    """``forward`` goes to the broker and ``finish`` rewrites its answer; or ``local`` is
    the whole answer."""

    forward: Any = None
    finish: Finish | None = None
    local: Any = None


@dataclass
class _Exchange:
    """What one request's rewrite must remember for its response."""

    request: Request
    spec: ApiSpec
    #: stand-in topic id -> the id the client asked about (not the tenant's)
    stand_ins: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    protocol_type: str | None = None
    #: answers for config resources the gateway refused itself
    refused: list[Any] = field(default_factory=list)


def _has(fields: tuple[FieldSpec, ...], attr: str) -> bool:
    return any(f.attr == attr or _has(f.fields, attr) for f in fields)


@dataclass(frozen=True)
class _Traits:
    """Which optional passes an API's messages need, worked out once from its schema."""

    request_topic_ids: bool
    response_topic_ids: bool
    response_endpoints: bool


_TRAITS: Mapping[int, _Traits] = MappingProxyType({
    key: _Traits(_has(spec.request_fields, "topic_id"), _has(spec.response_fields, "topic_id"),
                 _has(spec.response_fields, "host"))
    for key, spec in APIS.items()
})


class TenantRewriter:
    """One client connection's view of its tenant namespace."""

    def __init__(self, identity: TenantIdentity, topics: TenantTopics, listeners: BrokerListeners,
                 lookup_topics: Callable[[], Awaitable[None]]) -> None:
        self.identity = identity
        self.ns = Namespace(identity.prefix)
        self.topics = topics
        self._listeners = listeners
        self._lookup_topics = lookup_topics
        self._last_lookup = 0.0
        #: group id (as the client names it) -> protocol type, from JoinGroup
        self._group_protocols: dict[str, str] = {}

    # ---- requests --------------------------------------------------------------------

    async def prepare(self, request: Request) -> Plan:
        spec = request.spec
        body = request.body
        assert spec is not None and body is not None
        version = request.version
        exchange = _Exchange(request, spec)
        _as_consumer(body, version)
        special = _REQUESTS.get(request.api_key)
        if special is not None:
            local = special(self, exchange, body, version)
            if local is not None:
                return Plan(local=local)
        ns_.rename(body, spec.request_fields, version, self.ns.inward)
        if _TRAITS[request.api_key].request_topic_ids:
            await self._check_topic_ids(exchange, body, spec.request_fields, version)

        async def finish(response: Any) -> Any:
            return await self._finish(exchange, response)

        return Plan(forward=body, finish=finish)

    async def _check_topic_ids(self, exchange: _Exchange, body: Any,
                               fields: tuple[FieldSpec, ...], version: int) -> None:
        holders = ns_.topic_ids(body, fields, version)
        unknown = {h.topic_id for h in holders if not self.topics.owns(h.topic_id)}
        if unknown and time.monotonic() - self._last_lookup >= TOPIC_LOOKUP_INTERVAL_S:
            self._last_lookup = time.monotonic()
            await self._lookup_topics()
            unknown = {i for i in unknown if not self.topics.owns(i)}
        if not unknown:
            return
        # an id that exists nowhere: the broker answers UNKNOWN_TOPIC_ID, as for any typo
        stand_in_for = {i: uuid.uuid4() for i in unknown}
        for holder in holders:
            if holder.topic_id in stand_in_for:
                stand_in = stand_in_for[holder.topic_id]
                exchange.stand_ins[stand_in] = holder.topic_id
                holder.topic_id = stand_in

    # ---- responses -------------------------------------------------------------------

    async def _finish(self, exchange: _Exchange, response: Any) -> Any:
        spec, version = exchange.spec, exchange.request.version
        fields = spec.response_fields
        traits = _TRAITS[exchange.request.api_key]
        if exchange.stand_ins:
            for holder in ns_.topic_ids(response, fields, version):
                holder.topic_id = exchange.stand_ins.get(holder.topic_id, holder.topic_id)
        if traits.response_topic_ids:
            ns_.learn_topic_ids(self.ns, self.topics, response, fields, version)
        special = _RESPONSES.get(exchange.request.api_key)
        if special is not None:
            special(self, exchange, response, version)
        ns_.rename(response, fields, version, self.ns.outward, self.ns.scrub)
        if traits.response_endpoints:
            await self._rewrite_endpoints(exchange.request.api_key, response, fields, version)
        return response

    def learn_topics(self, metadata: Any, version: int, spec: ApiSpec) -> None:
        """Take in a Metadata response the gateway asked for itself."""
        ns_.learn_topic_ids(self.ns, self.topics, metadata, spec.response_fields, version)

    async def _rewrite_endpoints(self, api_key: int, response: Any, fields: tuple[FieldSpec, ...],
                                 version: int) -> None:
        """Every broker address in the response becomes the gateway's listener for it."""
        found: list[tuple[Any, BrokerAddress]] = []
        for holder, holder_fields in ns_.structs_with(response, fields, version, ("host", "port")):
            attrs = {f.attr for f in holder_fields if f.present(version)}
            id_attr = next((a for a in ("node_id", "broker_id") if a in attrs), None)
            if id_attr is None or int(getattr(holder, id_attr)) < 0 or not holder.host:
                continue
            found.append((holder, BrokerAddress(int(getattr(holder, id_attr)), str(holder.host),
                                                int(holder.port), getattr(holder, "rack", None))))
        if api_key == ApiKey.Metadata:
            await self._listeners.sync(b for _, b in found)
        for holder, broker in found:
            holder.host, holder.port = await self._listeners.ensure(broker)

    # ---- the APIs that need more than the schema walk ---------------------------------

    def _find_coordinator(self, exchange: _Exchange, body: Any, version: int) -> Any:
        if version >= 4:
            body.coordinator_keys = [self.ns.inward(k) for k in body.coordinator_keys or []]
        elif body.key is not None:
            body.key = self.ns.inward(body.key)
        return None

    def _found_coordinator(self, exchange: _Exchange, response: Any, version: int) -> None:
        if version >= 4:
            kept = []
            for coordinator in response.coordinators or []:
                key = self.ns.outward(coordinator.key)
                if key is not None:
                    coordinator.key = key
                    kept.append(coordinator)
            response.coordinators = kept

    def _config_resources(self, exchange: _Exchange, body: Any, version: int) -> Any:
        """Topics and groups are renamed; any other resource (brokers, client metrics) is
        refused here, without asking the broker."""
        spec = exchange.spec
        target = next(f for f in spec.response_fields if f.kind == "struct_array")
        entry_cls = struct_class(spec.response, target)
        forwarded = []
        for resource in body.resources or []:
            if resource.resource_type in ns_.TENANT_CONFIG_RESOURCES:
                resource.resource_name = self.ns.inward(resource.resource_name)
                forwarded.append(resource)
                continue
            entry = new_message(entry_cls, version, error_code=ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
                                error_message=NOT_YOURS, resource_type=resource.resource_type,
                                resource_name=resource.resource_name)
            exchange.refused.append(entry)
        body.resources = forwarded
        if forwarded:
            return None
        response = new_message(spec.response, version)
        setattr(response, target.attr, exchange.refused)
        return response

    def _configs_done(self, exchange: _Exchange, response: Any, version: int) -> None:
        target = next(f for f in exchange.spec.response_fields if f.kind == "struct_array")
        entries = []
        for entry in getattr(response, target.attr) or []:
            if entry.resource_type in ns_.TENANT_CONFIG_RESOURCES:
                name = self.ns.outward(entry.resource_name)
                if name is None:
                    continue
                entry.resource_name = name
            entries.append(entry)
        setattr(response, target.attr, entries + exchange.refused)

    def _join_group(self, exchange: _Exchange, body: Any, version: int) -> Any:
        exchange.protocol_type = body.protocol_type
        self._group_protocols[body.group_id] = body.protocol_type
        if body.protocol_type == ns_.CONSUMER_PROTOCOL:
            for protocol in body.protocols or []:
                protocol.metadata = ns_.subscription(protocol.metadata, self.ns.inward)
        return None

    def _joined_group(self, exchange: _Exchange, response: Any, version: int) -> None:
        protocol_type = response.protocol_type if version >= 7 else exchange.protocol_type
        if (protocol_type or exchange.protocol_type) == ns_.CONSUMER_PROTOCOL:
            for member in response.members or []:
                member.metadata = ns_.subscription(member.metadata, self.ns.outward)

    def _sync_group(self, exchange: _Exchange, body: Any, version: int) -> Any:
        protocol_type = body.protocol_type if version >= 5 else None
        exchange.protocol_type = protocol_type or self._group_protocols.get(body.group_id)
        if exchange.protocol_type == ns_.CONSUMER_PROTOCOL:
            for item in body.assignments or []:
                item.assignment = ns_.assignment(item.assignment, self.ns.inward)
        return None

    def _synced_group(self, exchange: _Exchange, response: Any, version: int) -> None:
        protocol_type = (response.protocol_type if version >= 5 else None) or exchange.protocol_type
        if protocol_type == ns_.CONSUMER_PROTOCOL:
            response.assignment = ns_.assignment(response.assignment, self.ns.outward)

    def _described_groups(self, exchange: _Exchange, response: Any, version: int) -> None:
        for group in response.groups or []:
            if group.protocol_type != ns_.CONSUMER_PROTOCOL:
                continue
            for member in group.members or []:
                member.member_metadata = ns_.subscription(member.member_metadata, self.ns.outward)
                member.member_assignment = ns_.assignment(member.member_assignment, self.ns.outward)

    def _group_heartbeat(self, exchange: _Exchange, body: Any, version: int) -> Any:
        """KIP-848: the broker matches a regex subscription against the whole cluster, so
        the regex is confined to the namespace (or refused, if it cannot be)."""
        regex = body.subscribed_topic_regex if version >= 1 else None
        if not regex:
            return None
        try:
            body.subscribed_topic_regex = topic_regex.confine(self.ns.prefix, regex)
        except topic_regex.RegexRefused as exc:
            return refusal(exchange.request, ErrorCode.INVALID_REGULAR_EXPRESSION, str(exc))
        return None

    def _described_consumer_groups(self, exchange: _Exchange, response: Any, version: int) -> None:
        for group in response.groups or []:
            for member in group.members or []:
                member.subscribed_topic_regex = topic_regex.unconfine(
                    self.ns.prefix, member.subscribed_topic_regex)

    def _cluster_id(self, exchange: _Exchange, response: Any, version: int) -> None:
        """Each tenant sees its logical cluster as the cluster."""
        if response.cluster_id is not None:
            response.cluster_id = self.identity.cluster_id


def _as_consumer(body: Any, version: int) -> None:
    """Clients may not pose as a follower replica (Fetch, ListOffsets, OffsetForLeaderEpoch
    carry a replica id): the broker would refuse without CLUSTER_ACTION, and the gateway
    does not even ask. -1 is a consumer; -2 a debugging consumer, which is allowed."""
    replica_id = getattr(body, "replica_id", None)
    if isinstance(replica_id, int) and replica_id >= 0:
        body.replica_id = -1
    state = getattr(body, "replica_state", None)
    if state is not None and getattr(state, "replica_id", -1) >= 0:
        state.replica_id = -1
        state.replica_epoch = -1
    if getattr(body, "cluster_id", None) is not None and hasattr(body, "replica_state"):
        body.cluster_id = None  # only KRaft followers send it


RequestFixup = Callable[[TenantRewriter, _Exchange, Any, int], Any]
ResponseFixup = Callable[[TenantRewriter, _Exchange, Any, int], None]

_REQUESTS: dict[int, RequestFixup] = {
    ApiKey.FindCoordinator: TenantRewriter._find_coordinator,
    ApiKey.DescribeConfigs: TenantRewriter._config_resources,
    ApiKey.AlterConfigs: TenantRewriter._config_resources,
    ApiKey.IncrementalAlterConfigs: TenantRewriter._config_resources,
    ApiKey.JoinGroup: TenantRewriter._join_group,
    ApiKey.SyncGroup: TenantRewriter._sync_group,
    ApiKey.ConsumerGroupHeartbeat: TenantRewriter._group_heartbeat,
}
_RESPONSES: dict[int, ResponseFixup] = {
    ApiKey.FindCoordinator: TenantRewriter._found_coordinator,
    ApiKey.DescribeConfigs: TenantRewriter._configs_done,
    ApiKey.AlterConfigs: TenantRewriter._configs_done,
    ApiKey.IncrementalAlterConfigs: TenantRewriter._configs_done,
    ApiKey.JoinGroup: TenantRewriter._joined_group,
    ApiKey.SyncGroup: TenantRewriter._synced_group,
    ApiKey.DescribeGroups: TenantRewriter._described_groups,
    ApiKey.Metadata: TenantRewriter._cluster_id,
    ApiKey.DescribeCluster: TenantRewriter._cluster_id,
    ApiKey.ConsumerGroupDescribe: TenantRewriter._described_consumer_groups,
}


def refusal(request: Request, error_code: int, message: str) -> Any:
    """The error response for a request the gateway will not forward."""
    spec = request.spec
    assert spec is not None
    return error_response(spec, request, error_code, message)
