"""A hostile tenant speaking the raw Kafka protocol through the gateway.

Tenant A logs in with its own key and sends hand-made requests (kafka-python's protocol
classes over a plain socket) aimed at tenant B: B's real topic names (with B's prefix),
B's topic ids, B's groups and transactional id, the whole cluster's listings, broker
configs and ACLs. By design a name A sends is always put in A's namespace, so B's real
names become names of A's that do not exist; ids A does not own become ids that exist
nowhere; anything outside a tenant's namespace (brokers, ACLs) is refused. Every attempt
must fail, no answer may name anything of B's that A did not send itself, and B's data,
offsets and transactions must be exactly as before.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
import time
import uuid
from typing import Any

import pytest
from confluent_kafka import Producer
from kafka.protocol.admin import (
    AlterConfigsRequest,
    CreateAclsRequest,
    CreatePartitionsRequest,
    DeleteGroupsRequest,
    DeleteRecordsRequest,
    DeleteTopicsRequest,
    DescribeClusterRequest,
    DescribeConfigsRequest,
    DescribeGroupsRequest,
    DescribeProducersRequest,
    IncrementalAlterConfigsRequest,
    ListGroupsRequest,
    ListTransactionsRequest,
)
from kafka.protocol.consumer import (
    FetchRequest,
    JoinGroupRequest,
    ListOffsetsRequest,
    OffsetCommitRequest,
    OffsetFetchRequest,
)
from kafka.protocol.metadata import MetadataRequest
from kafka.protocol.producer import InitProducerIdRequest, ProduceRequest, WriteTxnMarkersRequest
from kafka.protocol.sasl import SaslAuthenticateRequest, SaslHandshakeRequest
from kafka.record.default_records import DefaultRecordBatchBuilder

from streamplane.gateway.protocol import APIS
from streamplane.kafka import ClusterAdmin

from .conftest import Tenant, TenantFactory
from .test_gateway_kafka import committed, consume, create_topics, produce

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]

# Kafka error codes
UNKNOWN_TOPIC_OR_PARTITION = 3
TOPIC_AUTHORIZATION_FAILED = 29
GROUP_AUTHORIZATION_FAILED = 30
CLUSTER_AUTHORIZATION_FAILED = 31
UNSUPPORTED_VERSION = 35
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
GROUP_ID_NOT_FOUND = 69
MEMBER_ID_REQUIRED = 79
UNKNOWN_TOPIC_ID = 100
#: what an attempt on another tenant's topic may end in: not found in one's own
#: namespace, or not authorized
TOPIC_REFUSALS = {UNKNOWN_TOPIC_OR_PARTITION, TOPIC_AUTHORIZATION_FAILED, UNKNOWN_TOPIC_ID}


class RawClient:
    """One connection to the gateway, logged in with SASL/PLAIN, sending kafka-python
    request objects and decoding their responses; nothing of the gateway's own code."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        #: every response received, as text, to look for names that must not be there
        self.seen: list[str] = []

    @classmethod
    async def login(cls, tenant: Tenant) -> RawClient:
        host, port = tenant.bootstrap.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        client = cls(reader, writer)
        handshake = await client.send(SaslHandshakeRequest[1](mechanism="PLAIN"))
        assert handshake.error_code == 0
        auth = await client.send(SaslAuthenticateRequest[2](
            auth_bytes=f"\0{tenant.key}\0{tenant.secret}".encode()))
        assert auth.error_code == 0, auth
        return client

    async def send(self, request: Any) -> Any:
        request.with_header(correlation_id=next(self._ids), client_id="hostile")
        self._writer.write(request.encode(header=True, framed=True))
        await self._writer.drain()
        (size,) = struct.unpack(">i", await self._reader.readexactly(4))
        payload = await self._reader.readexactly(size)
        response = request.header.get_response_class().decode(payload, header=True)
        assert response.header.correlation_id == request.header.correlation_id
        self.seen.append(repr(response))
        return response

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()


def records(value: bytes) -> bytes:
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False,
                                        producer_id=-1, producer_epoch=-1, base_sequence=-1,
                                        batch_size=1 << 16)
    builder.append(0, int(time.time() * 1000), None, value, [])
    return bytes(builder.build())


def topic_id_of(tenant: Tenant, topic: str) -> uuid.UUID:
    async def ask() -> uuid.UUID:
        client = await RawClient.login(tenant)
        try:
            response = await client.send(MetadataRequest[12](
                topics=[MetadataRequest.MetadataRequestTopic(name=topic)],
                allow_auto_topic_creation=False, include_topic_authorized_operations=False))
        finally:
            await client.close()
        [found] = response.topics
        assert found.error_code == 0
        return uuid.UUID(str(found.topic_id))

    return asyncio.run(asyncio.wait_for(ask(), 30))


def open_producer_id(tenant: Tenant, topic: str) -> int:
    """The producer id of the transaction open on ``topic``'s partition 0."""
    async def ask() -> int:
        client = await RawClient.login(tenant)
        try:
            response = await client.send(DescribeProducersRequest[0](topics=[
                DescribeProducersRequest.TopicRequest(name=topic, partition_indexes=[0])]))
        finally:
            await client.close()
        [partition] = response.topics[0].partitions
        [active] = [p for p in partition.active_producers if p.current_txn_start_offset >= 0]
        return int(active.producer_id)

    return asyncio.run(asyncio.wait_for(ask(), 30))


def read_all(tenant: Tenant, topic: str, expect: int) -> list[str]:
    return consume({**tenant.confluent(), "isolation.level": "read_committed"}, topic,
                   f"check-{uuid.uuid4().hex[:6]}", expect)


# ---- the attack ----------------------------------------------------------------------------


async def attack(a: Tenant, b: Tenant, b_topic_id: uuid.UUID, b_producer: int) -> dict[str, Any]:
    """Every attempt, as tenant A; the interesting part of each answer, by attempt."""
    client = await RawClient.login(a)
    vault, group, txn = b.physical("vault"), b.physical("vault-readers"), b.physical("vault-tx")
    out: dict[str, Any] = {}
    try:
        # listing the cluster
        meta = await client.send(MetadataRequest[12](
            topics=None, allow_auto_topic_creation=False, include_topic_authorized_operations=False))
        out["metadata all"] = sorted(t.name for t in meta.topics)
        meta0 = await client.send(MetadataRequest[0](topics=[]))  # v0: [] means every topic
        out["metadata v0 all"] = sorted(t.name for t in meta0.topics)
        groups = await client.send(ListGroupsRequest[5](states_filter=[], types_filter=[]))
        out["list groups"] = (groups.error_code, sorted(g.group_id for g in groups.groups))
        txns = await client.send(ListTransactionsRequest[1](
            state_filters=[], producer_id_filters=[], duration_filter=-1))
        out["list transactions"] = (txns.error_code,
                                    [t.transactional_id for t in txns.transaction_states])

        # B's topic by its real name and by its id
        for how, topic in (("name", MetadataRequest.MetadataRequestTopic(name=vault)),
                           ("id", MetadataRequest.MetadataRequestTopic(topic_id=b_topic_id))):
            meta = await client.send(MetadataRequest[12](
                topics=[topic], allow_auto_topic_creation=True,
                include_topic_authorized_operations=False))
            out[f"metadata by {how}"] = [t.error_code for t in meta.topics]
        mixed = await client.send(MetadataRequest[12](
            topics=[MetadataRequest.MetadataRequestTopic(name=vault),
                    MetadataRequest.MetadataRequestTopic(topic_id=b_topic_id)],
            allow_auto_topic_creation=True, include_topic_authorized_operations=False))
        out["metadata mixed"] = [(t.error_code, t.name) for t in mixed.topics]
        produce_by_name = await client.send(ProduceRequest[9](
            transactional_id=None, acks=-1, timeout_ms=5000, topic_data=[
                ProduceRequest.TopicProduceData(name=vault, partition_data=[
                    ProduceRequest.TopicProduceData.PartitionProduceData(
                        index=0, records=records(b"from A"))])]))
        out["produce by name"] = produce_by_name.responses[0].partition_responses[0].error_code
        produce_by_id = await client.send(ProduceRequest[13](
            transactional_id=None, acks=-1, timeout_ms=5000, topic_data=[
                ProduceRequest.TopicProduceData(topic_id=b_topic_id, partition_data=[
                    ProduceRequest.TopicProduceData.PartitionProduceData(
                        index=0, records=records(b"from A by id"))])]))
        out["produce by id"] = produce_by_id.responses[0].partition_responses[0].error_code

        def fetch_partition() -> Any:
            return FetchRequest.FetchTopic.FetchPartition(
                partition=0, current_leader_epoch=-1, fetch_offset=0, last_fetched_epoch=-1,
                log_start_offset=-1, partition_max_bytes=1 << 20)

        fetch_common = {"replica_id": -1, "max_wait_ms": 100, "min_bytes": 1,
                        "max_bytes": 1 << 20, "isolation_level": 0, "session_id": 0,
                        "session_epoch": -1, "forgotten_topics_data": [], "rack_id": ""}
        by_name = await client.send(FetchRequest[12](**fetch_common, topics=[
            FetchRequest.FetchTopic(topic=vault, partitions=[fetch_partition()])]))
        out["fetch by name"] = [(p.error_code, bool(p.records))
                                for r in by_name.responses for p in r.partitions]
        by_id = await client.send(FetchRequest[16](**fetch_common, topics=[
            FetchRequest.FetchTopic(topic_id=b_topic_id, partitions=[fetch_partition()])]))
        out["fetch by id"] = [(p.error_code, bool(p.records))
                              for r in by_id.responses for p in r.partitions]
        # a replica id would let a fetch skip the consumer's checks; the gateway clears it
        as_replica = await client.send(FetchRequest[12](**{**fetch_common, "replica_id": 1},
                                                        topics=[FetchRequest.FetchTopic(
                                                            topic=vault,
                                                            partitions=[fetch_partition()])]))
        out["fetch as replica"] = [(p.error_code, bool(p.records))
                                   for r in as_replica.responses for p in r.partitions]
        offsets = await client.send(ListOffsetsRequest[7](
            replica_id=-1, isolation_level=0, topics=[ListOffsetsRequest.ListOffsetsTopic(
                name=vault, partitions=[ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition(
                    partition_index=0, current_leader_epoch=-1, timestamp=-1)])]))
        out["list offsets"] = offsets.topics[0].partitions[0].error_code

        # B's group: join it, commit and read its offsets, delete it
        join = await client.send(JoinGroupRequest[9](
            group_id=group, session_timeout_ms=10000, rebalance_timeout_ms=10000, member_id="",
            group_instance_id=None, protocol_type="consumer",
            protocols=[JoinGroupRequest.JoinGroupRequestProtocol(name="range", metadata=b"")],
            reason=None))
        out["join group"] = join.error_code
        commit_topic = OffsetCommitRequest.OffsetCommitRequestTopic
        commit_partition = commit_topic.OffsetCommitRequestPartition(
            partition_index=0, committed_offset=0, committed_leader_epoch=-1,
            committed_metadata="")
        commit = await client.send(OffsetCommitRequest[8](
            group_id=group, generation_id_or_member_epoch=-1, member_id="",
            group_instance_id=None, topics=[commit_topic(name=vault, partitions=[commit_partition])]))
        out["commit by name"] = commit.topics[0].partitions[0].error_code
        commit_id = await client.send(OffsetCommitRequest[10](
            group_id=group, generation_id_or_member_epoch=-1, member_id="",
            group_instance_id=None,
            topics=[commit_topic(topic_id=b_topic_id, partitions=[commit_partition])]))
        out["commit by id"] = commit_id.topics[0].partitions[0].error_code
        fetched = await client.send(OffsetFetchRequest[8](groups=[
            OffsetFetchRequest.OffsetFetchRequestGroup(group_id=group, topics=None)],
            require_stable=False))
        out["offset fetch"] = [(g.error_code, [t.name for t in g.topics]) for g in fetched.groups]
        described = await client.send(DescribeGroupsRequest[5](
            groups=[group], include_authorized_operations=False))
        out["describe group"] = [(g.error_code, g.group_state, len(g.members))
                                 for g in described.groups]
        deleted = await client.send(DeleteGroupsRequest[2](groups_names=[group]))
        out["delete group"] = [r.error_code for r in deleted.results]

        # B's transactional id
        init = await client.send(InitProducerIdRequest[4](
            transactional_id=txn, transaction_timeout_ms=60000, producer_id=-1,
            producer_epoch=-1))
        out["init producer id"] = init.error_code

        # configs: B's topic, the brokers
        resource = DescribeConfigsRequest.DescribeConfigsResource
        configs = await client.send(DescribeConfigsRequest[4](resources=[
            resource(resource_type=2, resource_name=vault, configuration_keys=None),
            resource(resource_type=4, resource_name="1", configuration_keys=None),
            resource(resource_type=4, resource_name="", configuration_keys=None),
            resource(resource_type=8, resource_name="1", configuration_keys=None)],
            include_synonyms=False, include_documentation=False))
        out["describe configs"] = sorted((r.resource_type, r.error_code) for r in configs.results)
        alter = AlterConfigsRequest.AlterConfigsResource
        altered = await client.send(AlterConfigsRequest[2](resources=[
            alter(resource_type=4, resource_name="1", configs=[
                alter.AlterableConfig(name="log.retention.ms", value="1000")]),
            alter(resource_type=2, resource_name=vault, configs=[
                alter.AlterableConfig(name="retention.ms", value="1")])], validate_only=False))
        out["alter configs"] = sorted((r.resource_type, r.error_code) for r in altered.responses)
        inc = IncrementalAlterConfigsRequest.AlterConfigsResource
        inc_altered = await client.send(IncrementalAlterConfigsRequest[1](resources=[
            inc(resource_type=4, resource_name="", configs=[inc.AlterableConfig(
                name="log.retention.ms", config_operation=0, value="1000")]),
            inc(resource_type=8, resource_name="1", configs=[inc.AlterableConfig(
                name="kafka", config_operation=0, value="TRACE")])], validate_only=False))
        out["incremental alter configs"] = sorted((r.resource_type, r.error_code)
                                                  for r in inc_altered.responses)

        # ACLs (not advertised)
        acl = await client.send(CreateAclsRequest[3](creations=[
            CreateAclsRequest.AclCreation(
                resource_type=2, resource_name="*", resource_pattern_type=3,
                principal=f"User:{a.key}", host="*", operation=2, permission_type=3)]))
        out["create acls"] = [r.error_code for r in acl.results]

        # destroying B's topic: by id, by name; its records, its partitions
        del_topics = await client.send(DeleteTopicsRequest[6](topics=[
            DeleteTopicsRequest.DeleteTopicState(name=None, topic_id=b_topic_id),
            DeleteTopicsRequest.DeleteTopicState(name=vault, topic_id=uuid.UUID(int=0))],
            timeout_ms=5000))
        out["delete topics"] = sorted(r.error_code for r in del_topics.responses)
        del_records = await client.send(DeleteRecordsRequest[2](topics=[
            DeleteRecordsRequest.DeleteRecordsTopic(name=vault, partitions=[
                DeleteRecordsRequest.DeleteRecordsTopic.DeleteRecordsPartition(
                    partition_index=0, offset=-1)])], timeout_ms=5000))
        out["delete records"] = del_records.topics[0].partitions[0].error_code
        partitions = await client.send(CreatePartitionsRequest[3](topics=[
            CreatePartitionsRequest.CreatePartitionsTopic(name=vault, count=5, assignments=None)],
            timeout_ms=5000, validate_only=False))
        out["create partitions"] = partitions.results[0].error_code
        producers = await client.send(DescribeProducersRequest[0](topics=[
            DescribeProducersRequest.TopicRequest(name=vault, partition_indexes=[0])]))
        out["describe producers"] = producers.topics[0].partitions[0].error_code

        # ending B's open transaction as the brokers do among themselves (not advertised)
        markers = await client.send(WriteTxnMarkersRequest[1](markers=[
            WriteTxnMarkersRequest.WritableTxnMarker(
                producer_id=b_producer, producer_epoch=0, transaction_result=False,
                coordinator_epoch=0, topics=[WriteTxnMarkersRequest.WritableTxnMarker
                                             .WritableTxnMarkerTopic(name=vault,
                                                                     partition_indexes=[0])])]))
        out["write txn markers"] = [p.error_code for m in markers.markers for t in m.topics
                                    for p in t.partitions]

        # the controllers' addresses: not a tenant's business, and not brokers to list
        controllers = await client.send(DescribeClusterRequest[1](
            include_cluster_authorized_operations=False, endpoint_type=2))
        out["describe controllers"] = (controllers.error_code,
                                       [(n.broker_id, n.port) for n in controllers.brokers])

        # a regex subscription that matches every topic of the cluster
        heartbeat = APIS[68].request
        assigned: list[uuid.UUID] = []
        member = uuid.uuid4().hex
        epoch = 0
        for _ in range(30):
            beat = await client.send(heartbeat[1](
                group_id="greedy", member_id=member, member_epoch=epoch, instance_id=None,
                rack_id=None, rebalance_timeout_ms=30000, subscribed_topic_names=None,
                subscribed_topic_regex=".*", server_assignor=None,
                topic_partitions=[] if epoch == 0 else None))
            assert beat.error_code == 0, beat
            epoch = beat.member_epoch
            if beat.assignment is not None and beat.assignment.topic_partitions:
                assigned = [tp.topic_id for tp in beat.assignment.topic_partitions]
                break
            await asyncio.sleep(0.5)
        out["regex assignment"] = assigned
    finally:
        await client.close()
    out["seen"] = "\n".join(client.seen)
    return out


def test_hostile_raw_client_cannot_reach_another_tenant(
    new_tenant: TenantFactory, super_admin: ClusterAdmin,
) -> None:
    a, b = new_tenant(), new_tenant()
    create_topics(a, "mine", partitions=1)
    create_topics(b, "vault", "b-only-secret", partitions=1)
    produce(b.confluent(), "vault", [f"v{i}" for i in range(5)])
    assert sorted(consume(b.confluent(), "vault", "vault-readers", 5)) == [f"v{i}" for i in range(5)]
    b_txn = Producer({**b.confluent(), "transactional.id": "vault-tx"})
    b_txn.init_transactions(30)
    b_txn.begin_transaction()
    b_txn.produce("vault", b"tx0")
    b_txn.commit_transaction(30)
    # and leaves one open, which A will try to abort
    b_txn.begin_transaction()
    b_txn.produce("vault", b"open-tx")
    assert b_txn.flush(20) == 0
    b_producer = open_producer_id(b, "vault")
    b_topic_id = topic_id_of(b, "vault")
    before = {t.name: t for t in super_admin.list_topics(prefix=b.prefix)}
    everything_before = {t.name for t in super_admin.list_topics()}

    started = time.monotonic()
    out = asyncio.run(asyncio.wait_for(attack(a, b, b_topic_id, b_producer), 120))
    print(f"attack took {time.monotonic() - started:.1f} s")

    # the cluster, as A lists it, is A's
    assert out["metadata all"] == ["mine"]
    assert out["metadata v0 all"] == ["mine"]
    assert out["list groups"] == (0, [])
    assert out["list transactions"] == (0, [])
    # B's topic: by name it is a topic of A's that does not exist; by id, no topic at all
    assert out["metadata by name"] in ([UNKNOWN_TOPIC_OR_PARTITION], [TOPIC_AUTHORIZATION_FAILED])
    assert out["metadata by id"] == [UNKNOWN_TOPIC_ID]
    assert out["metadata mixed"] and all(code != 0 for code, _ in out["metadata mixed"])
    assert out["produce by name"] in TOPIC_REFUSALS
    assert out["produce by id"] == UNKNOWN_TOPIC_ID
    for attempt in ("fetch by name", "fetch as replica", "fetch by id"):
        [(code, got_records)] = out[attempt]
        assert code in TOPIC_REFUSALS and not got_records, (attempt, code)
    assert out["list offsets"] in TOPIC_REFUSALS
    # B's group: whatever A does with that name happens to a group of A's own
    assert out["join group"] in (MEMBER_ID_REQUIRED, GROUP_AUTHORIZATION_FAILED)
    assert out["commit by name"] in TOPIC_REFUSALS
    assert out["commit by id"] in TOPIC_REFUSALS
    assert out["offset fetch"] in ([(0, [])], [(GROUP_AUTHORIZATION_FAILED, [])])
    [(code, _state, members)] = out["describe group"]
    assert code in (0, GROUP_AUTHORIZATION_FAILED) and members == 0
    # (the empty group of A's that the join made may go; B's offsets are checked below)
    assert out["delete group"][0] in (0, GROUP_ID_NOT_FOUND, GROUP_AUTHORIZATION_FAILED)
    # B's transactional id: A gets a producer id of its own namespace, B is not fenced
    assert out["init producer id"] in (0, TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    # outside any tenant's namespace: refused by the gateway
    assert out["describe configs"] == sorted([
        (2, UNKNOWN_TOPIC_OR_PARTITION), (4, CLUSTER_AUTHORIZATION_FAILED),
        (4, CLUSTER_AUTHORIZATION_FAILED), (8, CLUSTER_AUTHORIZATION_FAILED)])
    assert out["alter configs"] == sorted([(2, UNKNOWN_TOPIC_OR_PARTITION),
                                           (4, CLUSTER_AUTHORIZATION_FAILED)])
    assert out["incremental alter configs"] == sorted([(4, CLUSTER_AUTHORIZATION_FAILED),
                                                       (8, CLUSTER_AUTHORIZATION_FAILED)])
    assert out["create acls"] == [CLUSTER_AUTHORIZATION_FAILED]
    assert out["delete topics"] == sorted([UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_TOPIC_ID])
    assert out["delete records"] in TOPIC_REFUSALS
    assert out["create partitions"] in TOPIC_REFUSALS
    assert out["describe producers"] in TOPIC_REFUSALS

    # the controllers are not shown (and do not become "brokers" behind the gateway)
    code, controllers = out["describe controllers"]
    assert code != 0 and controllers == [], out["describe controllers"]
    # a regex matching everything is assigned A's topics only
    assert out["regex assignment"] == [topic_id_of(a, "mine")]

    # nothing of B's that A did not name itself shows anywhere
    assert "b-only" not in out["seen"]
    assert "vault-readers" not in out["seen"].replace(b.physical("vault-readers"), "")

    assert out["write txn markers"] in ([], [CLUSTER_AUTHORIZATION_FAILED])

    # B's data, offsets, topics and transactions are as they were
    assert sorted(read_all(b, "vault", 6)) == sorted([f"v{i}" for i in range(5)] + ["tx0"])
    assert committed(b.confluent(), "vault", "vault-readers", 1) == 5
    after = {t.name: t for t in super_admin.list_topics(prefix=b.prefix)}
    assert after.keys() == before.keys()
    assert super_admin.describe_topic(b.physical("vault")).overrides.get("retention.ms") is None
    assert len(super_admin.describe_topic(b.physical("vault")).partitions) == 1
    b_txn.produce("vault", b"tx1")
    b_txn.commit_transaction(30)  # neither fenced by A's InitProducerId nor aborted by A
    assert sorted(read_all(b, "vault", 8)) == sorted([f"v{i}" for i in range(5)]
                                                     + ["tx0", "open-tx", "tx1"])
    # and A's attempts created no topic anywhere but in A's namespace
    created = {t.name for t in super_admin.list_topics()} - everything_before
    assert all(name.startswith(a.prefix) for name in created), created
