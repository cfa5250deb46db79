"""kcat (Debian's, on librdkafka) through the gateway: two tenants, one topic name each."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from .conftest import RunningGateway, Tenant, TenantFactory
from .test_gateway_kafka import create_topics

KCAT = shutil.which("kcat")
pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240),
              pytest.mark.skipif(KCAT is None, reason="kcat is not installed (scripts/install.sh)")]


def kcat(tenant: Tenant, mechanism: str, *args: str, stdin: str | None = None) -> str:
    assert KCAT is not None
    done = subprocess.run(
        [KCAT, "-b", tenant.bootstrap, "-X", "security.protocol=SASL_PLAINTEXT",
         "-X", f"sasl.mechanisms={mechanism}", "-X", f"sasl.username={tenant.key}",
         "-X", f"sasl.password={tenant.secret}", *args],
        input=stdin, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def listing(tenant: Tenant, mechanism: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(kcat(tenant, mechanism, "-L", "-J"))
    return result


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
def test_kcat_produces_and_consumes_per_tenant(new_tenant: TenantFactory, gateway: RunningGateway,
                                               mechanism: str) -> None:
    a, b = new_tenant(), new_tenant()
    for tenant in (a, b):
        create_topics(tenant, "orders", partitions=1)
    for tenant, count in ((a, 4), (b, 2)):
        lines = "".join(f"{tenant.key}-{i}\n" for i in range(count))
        kcat(tenant, mechanism, "-P", "-t", "orders", stdin=lines)

    for tenant, count in ((a, 4), (b, 2)):
        out = kcat(tenant, mechanism, "-C", "-t", "orders", "-o", "beginning", "-e", "-q")
        assert out.split() == [f"{tenant.key}-{i}" for i in range(count)]
        # a consumer group too, under the tenant's own group id
        grouped = kcat(tenant, mechanism, "-G", "kcat-readers", "-X", "auto.offset.reset=earliest",
                       "-c", str(count), "-q", "orders")
        assert sorted(grouped.split()) == [f"{tenant.key}-{i}" for i in range(count)]

        metadata = listing(tenant, mechanism)
        assert [t["topic"] for t in metadata["topics"]] == ["orders"]
        assert tenant.prefix not in json.dumps(metadata)
        # the brokers kcat is told about are the gateway's listeners
        assert {broker["name"] for broker in metadata["brokers"]} == {
            f"127.0.0.1:{port}" for port in gateway.broker_ports().values()}
