"""PSC validation: nonsense is refused with a message a user understands."""

from __future__ import annotations

from typing import Any

import pytest

from streamplane.channel.source import parse_psc
from streamplane.models.psc import PhysicalClusterSpec
from streamplane.versions import DEFAULT_KAFKA_VERSION


def spec(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "demo",
        "brokers": [{"id": 1}, {"id": 2}, {"id": 3}],
        "super_user": {"password": "a-long-enough-secret"},
    }
    base.update(over)
    return base


def test_a_minimal_spec_gets_sensible_defaults() -> None:
    psc = parse_psc(spec())
    assert psc.kafka_version == DEFAULT_KAFKA_VERSION
    assert psc.generation == 1
    assert psc.controller_ids() == [1]
    assert psc.default_replication_factor == 3


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"brokers": []}, "at least one broker"),
        ({"brokers": [{"id": 1}, {"id": 1}]}, "repeated: [1]"),
        ({"kafka_version": "2.8.0"}, "Kafka version '2.8.0' is not supported"),
        ({"broker_configs": {"default.replication.factor": "4"}}, "more than the 3 broker(s)"),
        ({"broker_configs": {"min.insync.replicas": "4"}}, "more than the replication factor"),
        ({"broker_configs": {"offsets.topic.replication.factor": "zero"}}, "whole number"),
        ({"broker_configs": {"listeners": "PLAINTEXT://:9092"}}, "the satellite manages them"),
        ({"controllers": {"count": 2}}, "must be odd"),
        ({"controllers": {"mode": "combined", "count": 5}}, "need at least as many brokers"),
        ({"id": "Bad_Name"}, "lowercase letters"),
        ({"super_user": {"password": "short"}}, "at least 12 characters"),
        ({"brokers": [{"id": 1, "port": 30001}, {"id": 2, "metrics_port": 30001}]},
         "port 30001 is used twice"),
        ({"host": "localhost"}, "must be an IP address"),
        ({"unknown_field": 1}, "unknown_field: Extra inputs are not permitted"),
    ],
)
def test_nonsense_is_refused_with_a_clear_message(override: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_psc(spec(**override))
    assert message in str(err.value)


def test_secrets_are_masked_except_on_the_wire() -> None:
    psc = parse_psc(spec())
    assert "a-long-enough-secret" not in psc.model_dump_json()
    assert "a-long-enough-secret" not in repr(psc)
    assert psc.to_wire()["super_user"]["password"] == "a-long-enough-secret"
    assert PhysicalClusterSpec.model_validate(psc.to_wire()) == psc
