"""Gateway pieces that need no Kafka: schemas, renaming, advertised versions, listeners."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from kafka.protocol.admin import DescribeConfigsRequest, ListGroupsResponse
from kafka.protocol.consumer import ConsumerProtocolSubscription, FetchRequest, OffsetFetchRequest
from kafka.protocol.metadata import FindCoordinatorRequest, MetadataResponse
from pydantic import ValidationError

from streamplane.gateway import GatewayConfig, TenantIdentity, UpstreamCredentials
from streamplane.gateway.apis import FORWARDED, LOCAL, UpstreamVersions, api_versions_response
from streamplane.gateway.brokers import BrokerAddress, BrokerListeners
from streamplane.gateway.namespace import Namespace, TenantTopics, rename, subscription
from streamplane.gateway.protocol import (
    APIS,
    ErrorCode,
    Request,
    encode_response,
    error_response,
    new_message,
    parse_request,
    struct_class,
)
from streamplane.gateway.rewrite import TenantRewriter

pytestmark = pytest.mark.timeout(60)

NS = Namespace("lkc-aaa_")


def _request(body: object, key: int, version: int) -> Request:
    body.with_header(correlation_id=7, client_id="test")  # type: ignore[attr-defined]
    return parse_request(bytes(body.encode(header=True)))  # type: ignore[attr-defined]


def _rewriter() -> TenantRewriter:
    identity = TenantIdentity(key="k", cluster_id="lkc-aaa", prefix=NS.prefix,
                              upstream=UpstreamCredentials(username="k", password="p"))

    async def accept(*_: object) -> None:
        return None

    async def lookup() -> None:
        return None

    listeners = BrokerListeners("127.0.0.1", "127.0.0.1", accept, lambda _: None)
    return TenantRewriter(identity, TenantTopics(), listeners, lookup)


def test_listings_keep_only_the_tenant_and_lose_the_prefix() -> None:
    topic = MetadataResponse.MetadataResponseTopic
    metadata = MetadataResponse(version=12, topics=[
        topic(version=12, name=n, topic_id=uuid.uuid4(), partitions=[])
        for n in ("lkc-aaa_orders", "lkc-bbb_orders", "__consumer_offsets", "lkc-aaa_lkc-bbb_x")])
    rename(metadata, APIS[3].response_fields, 12, NS.outward, NS.scrub)
    assert [t.name for t in metadata.topics] == ["orders", "lkc-bbb_x"]

    group = ListGroupsResponse.ListedGroup
    groups = ListGroupsResponse(version=4, error_code=0, groups=[
        group(version=4, group_id=g, protocol_type="consumer", group_state="Empty")
        for g in ("lkc-aaa_app", "lkc-bbb_app")])
    rename(groups, APIS[16].response_fields, 4, NS.outward, NS.scrub)
    assert [g.group_id for g in groups.groups] == ["app"]


def test_requests_get_the_prefix_everywhere() -> None:
    fetch_offsets = OffsetFetchRequest(version=8, groups=[OffsetFetchRequest.OffsetFetchRequestGroup(
        version=8, group_id="app", topics=[
            OffsetFetchRequest.OffsetFetchRequestGroup.OffsetFetchRequestTopics(
                version=8, name="orders", partition_indexes=[0])])])
    rename(fetch_offsets, APIS[9].request_fields, 8, NS.inward)
    assert fetch_offsets.groups[0].group_id == "lkc-aaa_app"
    assert fetch_offsets.groups[0].topics[0].name == "lkc-aaa_orders"

    rewriter = _rewriter()
    find = _request(FindCoordinatorRequest(version=4, key_type=0, coordinator_keys=["g1", "g2"]), 10, 4)
    plan = asyncio.run(rewriter.prepare(find))
    assert plan.forward.coordinator_keys == ["lkc-aaa_g1", "lkc-aaa_g2"]


def test_consumer_protocol_subscriptions_are_renamed_both_ways() -> None:
    sub = ConsumerProtocolSubscription(version=1, topics=["orders"], user_data=None,
                                       owned_partitions=[ConsumerProtocolSubscription.TopicPartition(
                                           version=1, topic="orders", partitions=[0])])
    data = bytes(sub.encode(header=True))
    inside = subscription(data, NS.inward)
    decoded = ConsumerProtocolSubscription.decode(inside)
    assert decoded.topics == ["lkc-aaa_orders"]
    assert decoded.owned_partitions[0].topic == "lkc-aaa_orders"
    assert subscription(inside, NS.outward) == data
    assert subscription(b"not the consumer protocol", NS.inward) == b"not the consumer protocol"


def test_broker_configs_are_refused_without_asking_the_cluster() -> None:
    resource = DescribeConfigsRequest.DescribeConfigsResource
    request = _request(DescribeConfigsRequest(version=4, include_synonyms=False,
                                              include_documentation=False, resources=[
        resource(version=4, resource_type=4, resource_name="1", configuration_keys=None)]), 32, 4)
    plan = asyncio.run(_rewriter().prepare(request))
    assert plan.forward is None
    [result] = plan.local.results
    assert (result.resource_type, result.resource_name, result.error_code) == (
        4, "1", ErrorCode.CLUSTER_AUTHORIZATION_FAILED)


def test_clients_cannot_fetch_as_a_follower() -> None:
    fetch = FetchRequest(version=12, replica_id=3, max_wait_ms=1, min_bytes=1, max_bytes=1,
                         isolation_level=0, session_id=0, session_epoch=-1, topics=[],
                         forgotten_topics_data=[], rack_id="")
    plan = asyncio.run(_rewriter().prepare(_request(fetch, 1, 12)))
    assert plan.forward.replica_id == -1


def test_advertised_versions_are_what_every_broker_and_the_gateway_support() -> None:
    versions = UpstreamVersions()
    broker = {k: (0, 50) for k in range(100)}
    versions.record(("b1", 1), broker)
    versions.record(("b2", 2), {**broker, 0: (3, 9)})
    advertised = versions.advertised()
    assert advertised[0] == (3, 9)  # Produce: the older broker holds it back
    assert advertised[3] == FORWARDED[3]
    assert set(advertised) == set(FORWARDED) | set(LOCAL)
    for refused in (29, 30, 31, 50, 51, 55, 57, 71, 78):  # ACLs, SCRAM, quorum...
        assert refused not in advertised
    assert advertised[68] == (0, 1)  # KIP-848, with Kafka's schemas from its jar
    versions.forget_except({("b1", 1)})
    assert versions.advertised()[0] == FORWARDED[0]
    body = api_versions_response(3, advertised)
    data = encode_response(body, 3, 1)
    assert len(data) > 100


def test_every_api_has_an_error_response_clients_can_read() -> None:
    for key, spec in APIS.items():
        for version in range(spec.versions[0], spec.versions[1] + 1):
            body = new_message(spec.request, version)
            first = next((f for f in spec.request_fields
                          if f.kind == "struct_array" and f.present(version)), None)
            if first is not None:
                setattr(body, first.attr, [new_message(struct_class(spec.request, first), version)])
            request = Request(key, version, 1, "c", body, 0)
            response = error_response(spec, request, ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "no")
            data = encode_response(response, version, 1)
            if key != 18:  # ApiVersions errors are read as v0 by design
                spec.response.decode(data[4:], version=version, header=True)


def test_config_validation() -> None:
    with pytest.raises(ValidationError, match="host:port"):
        GatewayConfig(upstream_bootstrap=("nonsense",))
    with pytest.raises(ValidationError, match="mechanisms"):
        GatewayConfig(upstream_bootstrap=("h:1",), mechanisms=("GSSAPI",))
    assert GatewayConfig(upstream_bootstrap=("h:1",), listen_host="0.0.0.0",
                         advertised_host="gw.example").advertised == "gw.example"


def test_listeners_come_and_go_with_the_brokers() -> None:
    async def scenario() -> None:
        accepted: list[int] = []
        removed: list[int] = []

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         node_id: int) -> None:
            accepted.append(node_id)
            writer.close()

        listeners = BrokerListeners("127.0.0.1", "127.0.0.1", accept, removed.append,
                                    removal_grace_s=0.2)
        try:
            await listeners.sync([BrokerAddress(1, "h1", 9092), BrokerAddress(2, "h2", 9092)])
            ports = listeners.ports()
            assert set(ports) == {1, 2}
            for node_id in (1, 2):
                _, writer = await asyncio.open_connection("127.0.0.1", ports[node_id])
                writer.close()
            await asyncio.sleep(0.1)
            assert sorted(accepted) == [1, 2]

            await listeners.sync([BrokerAddress(1, "h1", 9092)])
            assert listeners.endpoint(2) is not None  # still in its grace period
            await asyncio.sleep(0.4)
            assert removed == [2] and listeners.endpoint(2) is None
            with pytest.raises(OSError):
                await asyncio.open_connection("127.0.0.1", ports[2])

            # it comes back, on the same port, and where it now lives
            await listeners.sync([BrokerAddress(1, "h1", 9092), BrokerAddress(2, "h2b", 9093)])
            assert listeners.ports() == ports
            assert listeners.upstream(2) == BrokerAddress(2, "h2b", 9093)
            # a broker that is listed again within the grace period keeps its listener
            await listeners.sync([BrokerAddress(2, "h2b", 9093)])
            await listeners.sync([BrokerAddress(1, "h1", 9092), BrokerAddress(2, "h2b", 9093)])
            await asyncio.sleep(0.4)
            assert removed == [2]
        finally:
            await listeners.close()

    asyncio.run(scenario())
