"""Bad input to the multi-host commands: a clear error, and nothing made."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamplane.cli.fleet import FleetDeployment
from streamplane.models.psc import BrokerSpec, PhysicalClusterSpec
from streamplane.testing import streamplane


def test_a_satellite_address_that_is_not_an_ip_is_refused(tmp_path: Path) -> None:
    res = streamplane("satellite", "run", "--host", "sat-a.example", "--data-dir", str(tmp_path / "sat"))
    assert res.returncode == 2
    assert "host 'sat-a.example' must be an IP address" in res.stderr
    assert not (tmp_path / "sat").exists()


def test_up_refuses_a_zone_count_it_cannot_build(tmp_path: Path) -> None:
    res = streamplane("up", "--zones", "9", "--detach", "--data-dir", str(tmp_path))
    assert res.returncode == 2 and "--zones" in res.stderr
    assert not FleetDeployment.exists(tmp_path) and list(tmp_path.iterdir()) == []


def test_a_spec_over_several_satellites_must_say_where_and_which_cluster() -> None:
    def spec(**over: object) -> dict[str, object]:
        return {"id": "spread", "satellite": "sat-a", "kafka_cluster_id": "MkU3OEVBNTcwNTJENDM2Qg",
                "controllers": {"mode": "combined", "count": 1},
                "brokers": [BrokerSpec(id=1, satellite="sat-a"),
                            BrokerSpec(id=2, satellite="sat-b", host="10.0.0.12")],
                "super_user": {"password": "x" * 16}, **over}

    assert PhysicalClusterSpec.model_validate(spec()).satellites() == ["sat-a", "sat-b"]
    for over, message in [
        ({"brokers": [BrokerSpec(id=1, satellite="sat-b")]}, "needs that satellite's address"),
        ({"kafka_cluster_id": None}, "needs its kafka_cluster_id"),
        ({"controllers": {"mode": "dedicated", "count": 1}}, "dedicated controllers are not supported"),
        ({"satellite": None}, "needs a satellite of its own"),
    ]:
        with pytest.raises(ValueError, match=message):
            PhysicalClusterSpec.model_validate(spec(**over))
    with pytest.raises(ValueError, match="must be an IP address"):
        BrokerSpec(id=1, host="not-an-ip")
