"""Which Kafka APIs the gateway speaks, in which versions, and what it advertises.

A client learns what it may send from ApiVersions. The gateway advertises an API only if
it knows how to rewrite it, in the versions that it can rewrite, that kafka-python has a
schema for, and that the brokers behind it support. Everything else (ACLs, quotas, SCRAM
users, reassignments, quorum, log dirs, delegation tokens, share and streams groups,
telemetry) is not advertised and is refused if sent anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from kafka.protocol.api_key import ApiKey
from kafka.protocol.metadata import ApiVersionsResponse

from streamplane.gateway.protocol import APIS, ErrorCode, VersionRange

K = ApiKey

#: forwarded to the brokers after tenant rewriting, with the versions the rewriting covers
FORWARDED: Mapping[int, VersionRange] = MappingProxyType({
    K.Produce: (3, 13),
    K.Fetch: (4, 18),
    K.ListOffsets: (1, 11),
    K.Metadata: (0, 13),
    K.OffsetCommit: (2, 10),
    K.OffsetFetch: (1, 10),
    K.FindCoordinator: (0, 6),
    K.JoinGroup: (0, 9),
    K.Heartbeat: (0, 4),
    K.LeaveGroup: (0, 5),
    K.SyncGroup: (0, 5),
    K.DescribeGroups: (0, 6),
    K.ListGroups: (0, 5),
    K.CreateTopics: (2, 7),
    K.DeleteTopics: (1, 6),
    K.DeleteRecords: (0, 2),
    K.InitProducerId: (0, 6),
    K.OffsetForLeaderEpoch: (2, 4),
    # v4+ batches transactions for brokers (it needs CLUSTER_ACTION); clients send v0-3
    K.AddPartitionsToTxn: (0, 5),
    K.AddOffsetsToTxn: (0, 4),
    K.EndTxn: (0, 5),
    K.TxnOffsetCommit: (0, 5),
    K.DescribeConfigs: (1, 4),
    K.AlterConfigs: (0, 2),
    K.CreatePartitions: (0, 3),
    K.DeleteGroups: (0, 2),
    K.IncrementalAlterConfigs: (0, 1),
    K.OffsetDelete: (0, 0),
    K.DescribeCluster: (0, 2),
    K.DescribeProducers: (0, 0),
    K.DescribeTransactions: (0, 0),
    # v2 filters by a regular expression, which would need rewriting into the namespace
    K.ListTransactions: (0, 1),
    K.DescribeTopicPartitions: (0, 0),
    # KIP-848; schemas from Kafka's jar (jar_schemas.py); a topic regex is confined to
    # the tenant's namespace (rewrite.py)
    K.ConsumerGroupHeartbeat: (0, 1),
    K.ConsumerGroupDescribe: (0, 1),
})

#: answered by the gateway itself
LOCAL: Mapping[int, VersionRange] = MappingProxyType({
    K.SaslHandshake: (0, 1),
    K.ApiVersions: (0, 4),
    K.SaslAuthenticate: (0, 2),
})


def _intersect(*ranges: VersionRange) -> VersionRange | None:
    low = max(r[0] for r in ranges)
    high = min(r[1] for r in ranges)
    return (low, high) if low <= high else None


class UpstreamVersions:
    """What each broker said in ApiVersions; the gateway advertises what all of them do,
    so a client may use any connection for any request."""

    def __init__(self) -> None:
        self._by_broker: dict[tuple[str, int], Mapping[int, VersionRange]] = {}

    def record(self, address: tuple[str, int], versions: Mapping[int, VersionRange]) -> None:
        self._by_broker[address] = dict(versions)

    def forget_except(self, addresses: set[tuple[str, int]]) -> None:
        """Drop brokers that left, so they no longer hold the advertisement back."""
        if addresses:
            for address in list(self._by_broker):
                if address not in addresses:
                    del self._by_broker[address]

    @property
    def known(self) -> bool:
        return bool(self._by_broker)

    def advertised(self) -> dict[int, VersionRange]:
        result = dict(LOCAL)
        for key, caps in FORWARDED.items():
            spec = APIS.get(key)
            if spec is None:
                continue
            ranges = [caps, spec.versions]
            ranges += [versions[key] for versions in self._by_broker.values() if key in versions]
            if any(key not in versions for versions in self._by_broker.values()):
                continue
            common = _intersect(*ranges)
            if common is not None:
                result[key] = common
        return result


def api_versions_response(version: int, advertised: Mapping[int, VersionRange],
                          error_code: int = ErrorCode.NONE) -> Any:
    entry = ApiVersionsResponse.ApiVersion
    keys = [entry(version=version, api_key=k, min_version=lo, max_version=hi)
            for k, (lo, hi) in sorted(advertised.items())]
    return ApiVersionsResponse(version=version, error_code=error_code, api_keys=keys,
                               throttle_time_ms=0)
