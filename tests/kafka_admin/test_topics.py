"""Topic administration against a real 1-broker cluster: round trips and user errors."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from streamplane.kafka import (
    ClusterAdmin,
    ClusterUnreachableError,
    ConfigSource,
    InvalidTopicError,
    TopicExistsError,
    TopicNotFoundError,
    TopicSummary,
)
from streamplane.testing import wait_for

from .conftest import SoloCluster, consume_and_commit, produce, unique

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]


def test_topic_round_trip(admin: ClusterAdmin) -> None:
    prefix = unique("rt-") + "_"
    name = prefix + "orders"
    admin.create_topic(name, 3, configs={"retention.ms": "3600000", "cleanup.policy": "compact"})

    assert admin.list_topics(prefix) == [TopicSummary(name=name, partitions=3, replication_factor=1)]
    assert name in [t.name for t in admin.list_topics()]
    assert not [t for t in admin.list_topics() if t.name.startswith("__")]

    desc = admin.describe_topic(name)
    assert desc.name == name and desc.topic_id and not desc.internal
    assert [(p.id, p.leader, p.replicas, p.isr) for p in desc.partitions] == [
        (0, 1, (1,), (1,)), (1, 1, (1,), (1,)), (2, 1, (1,), (1,))]
    assert desc.replication_factor == 1
    assert desc.overrides == {"retention.ms": "3600000", "cleanup.policy": "compact"}
    assert desc.configs["retention.ms"].source == ConfigSource.TOPIC
    assert all(c.source != ConfigSource.DEFAULT for c in desc.configs.values())

    admin.alter_topic_configs(name, set={"retention.ms": "7200000"}, delete=["cleanup.policy"])
    wait_for(lambda: admin.describe_topic(name).overrides == {"retention.ms": "7200000"},
             10, "the config change to show in describe_topic")

    admin.add_partitions(name, 5)
    assert len(admin.describe_topic(name).partitions) == 5
    assert admin.partition_count(prefix) == 5
    assert admin.partition_count() >= 5

    admin.delete_topic(name)
    assert admin.list_topics(prefix) == []
    with pytest.raises(TopicNotFoundError):
        admin.describe_topic(name)


def test_internal_topics_are_described_but_not_listed_or_counted(
    solo: SoloCluster, admin: ClusterAdmin,
) -> None:
    name = unique()
    admin.create_topic(name, 2)
    try:
        conf = solo.client_config(*solo.super_user)
        assert produce(conf, name, 4) == []
        consume_and_commit(conf, name, unique("grp-"), expect=4)  # creates __consumer_offsets
        offsets = admin.describe_topic("__consumer_offsets")
        assert offsets.internal and len(offsets.partitions) > 0
        listed = admin.list_topics()
        assert "__consumer_offsets" not in [t.name for t in listed]
        assert admin.partition_count() == sum(t.partitions for t in listed)
    finally:
        admin.delete_topic(name)


def test_one_admin_serves_many_threads(admin: ClusterAdmin) -> None:
    names = [unique("par-") for _ in range(8)]

    def lifecycle(name: str) -> int:
        admin.create_topic(name, 2)
        partitions = len(admin.describe_topic(name).partitions)
        admin.delete_topic(name)
        return partitions

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(lifecycle, names)) == [2] * 8
    assert not set(names) & {t.name for t in admin.list_topics()}


def test_validate_only_creates_nothing(admin: ClusterAdmin) -> None:
    name = unique()
    admin.create_topic(name, 2, configs={"retention.ms": "60000"}, validate_only=True)
    assert name not in [t.name for t in admin.list_topics()]
    with pytest.raises(InvalidTopicError, match="Not a number"):
        admin.create_topic(name, 2, configs={"retention.ms": "soon"}, validate_only=True)


def test_duplicate_topic_is_refused_with_a_clear_message(admin: ClusterAdmin) -> None:
    name = unique()
    admin.create_topic(name, 1)
    try:
        with pytest.raises(TopicExistsError, match=f"a topic named '{name}' already exists"):
            admin.create_topic(name, 4)
        assert admin.describe_topic(name).partitions[0].leader == 1
        assert len(admin.describe_topic(name).partitions) == 1
    finally:
        admin.delete_topic(name)


@pytest.mark.parametrize(("name", "partitions", "rf", "configs", "message"), [
    ("bad name!", 1, None, None, "contains one or more characters other than ASCII alphanumerics"),
    ("x" * 250, 1, None, None, "longer than the max allowed length 249"),
    ("..", 1, None, None, "'..' is not allowed"),
    ("__mine", 1, None, None, "reserved for Kafka's internal topics"),
    ("ok-name", 0, None, None, "at least 1 partition"),
    ("ok-name", 1, 3, None, "only 1 broker"),
    ("ok-name", 1, None, {"retention.ms": "forever"}, "Invalid value forever for configuration"),
    ("ok-name", 1, None, {"no.such.config": "1"}, "Unknown topic config name: no.such.config"),
])
def test_invalid_topics_are_refused_with_kafkas_reason(
    admin: ClusterAdmin, name: str, partitions: int, rf: int | None,
    configs: dict[str, str] | None, message: str,
) -> None:
    with pytest.raises(InvalidTopicError, match=message):
        admin.create_topic(name, partitions, rf, configs)
    assert name not in [t.name for t in admin.list_topics()]


def test_unknown_topics_raise_topic_not_found(admin: ClusterAdmin) -> None:
    name = unique("missing-")
    for call in (lambda: admin.describe_topic(name), lambda: admin.delete_topic(name),
                 lambda: admin.add_partitions(name, 3),
                 lambda: admin.alter_topic_configs(name, set={"retention.ms": "1000"})):
        with pytest.raises(TopicNotFoundError, match=f"no topic named '{name}'"):
            call()


def test_bad_changes_to_an_existing_topic(admin: ClusterAdmin) -> None:
    name = unique()
    admin.create_topic(name, 3)
    try:
        with pytest.raises(InvalidTopicError, match="currently has 3 partition"):
            admin.add_partitions(name, 2)
        with pytest.raises(InvalidTopicError, match="out of expected range"):
            admin.add_partitions(name, 0)
        with pytest.raises(InvalidTopicError, match="Config name mustn't be empty"):
            admin.alter_topic_configs(name, set={"": "1"})
        with pytest.raises(InvalidTopicError, match="Invalid value abc"):
            admin.alter_topic_configs(name, set={"retention.ms": "abc"})
        with pytest.raises(InvalidTopicError, match="both set"):
            admin.alter_topic_configs(name, set={"retention.ms": "1"}, delete=["retention.ms"])
        with pytest.raises(InvalidTopicError, match="internal"):
            admin.delete_topic("__consumer_offsets")
        with pytest.raises(InvalidTopicError, match="Empty topic name"):
            admin.describe_topic("")
        assert admin.describe_topic(name).overrides == {}
    finally:
        admin.delete_topic(name)


def test_unreachable_cluster_fails_within_the_timeout() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    with ClusterAdmin(f"127.0.0.1:{port}", "nobody", "nothing-here", timeout=2) as adm, \
            pytest.raises(ClusterUnreachableError, match="did not answer within 2 s"):
        adm.create_topic("t", 1)
    assert time.monotonic() - started < 10


def test_wrong_password_says_the_credentials_were_refused(solo: SoloCluster) -> None:
    user, _ = solo.super_user
    with solo.admin(user, "not-the-password", timeout=3) as adm, \
            pytest.raises(ClusterUnreachableError, match="refused the credentials"):
        adm.list_topics()
