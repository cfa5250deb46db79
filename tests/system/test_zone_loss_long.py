"""System tests (``scripts/system-test.sh``, not CI): zones lost over and over, with data.

On a ``streamplane up --zones 3`` fleet, a multi-zone dedicated cluster holds
``SYSTEM_TEST_DATA_MB`` (default 1024) MiB written before the run, while an idempotent
``acks=all`` producer runs throughout. Then ``SYSTEM_TEST_ROUNDS`` (default 6) rounds,
chosen by a seeded random generator (``SYSTEM_TEST_SEED``, printed): kill -9 a whole zone
(its satellite and its Kafka processes), only its satellite, or only its broker; keep it
away for 20-60 s; bring it back; wait until the cluster is healthy with no under-replicated
partition. At the end every acknowledged message must be readable exactly once.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import time
import uuid
from collections.abc import Iterator

import psutil
import pytest

from streamplane.mothership.server import MothershipLayout
from streamplane.testing import (
    Platform,
    SequenceProducer,
    cli,
    consume_sequences,
    fill_topic,
    parse_properties,
    streamplane,
    wait_for,
)

pytestmark = [pytest.mark.kafka, pytest.mark.system, pytest.mark.timeout(7200)]

DATA_MB = int(os.environ.get("SYSTEM_TEST_DATA_MB", "1024"))
ROUNDS = int(os.environ.get("SYSTEM_TEST_ROUNDS", "6"))
SEED = int(os.environ.get("SYSTEM_TEST_SEED", str(int(time.time()))))


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    data_dir = tmp_path_factory.mktemp("system-fleet")
    try:
        res = streamplane("up", "--zones", "3", "--detach", "--data-dir", str(data_dir),
                          env={"STREAMPLANE_BROKER_HEAP_MB": "384"}, timeout=900)
        assert res.returncode == 0, res.stdout + res.stderr
        layout = MothershipLayout(data_dir)
        url = json.loads(layout.endpoint_file.read_text())["url"]
        yield Platform(data_dir, url, layout.token_file.read_text().strip())
    finally:
        streamplane("down", "--data-dir", str(data_dir), timeout=300)


def kafka_pids(satellite: str, only: str = "/clusters/") -> list[int]:
    return [p.pid for p in psutil.process_iter(["cmdline"])
            if f"/satellites/{satellite}{only}" in " ".join(p.info["cmdline"] or [])
            and "kafka.Kafka" in " ".join(p.info["cmdline"] or [])]


def test_random_losses_of_zones_satellites_and_brokers_lose_nothing_acknowledged(fleet: Platform) -> None:
    rng = random.Random(SEED)
    print(f"seed {SEED}, {ROUNDS} rounds, {DATA_MB} MiB of data")
    cluster = json.loads(cli(fleet, "cluster", "create", "long", "--type", "dedicated", "--cku", "1",
                             "--availability", "multi-zone", "--wait", "-o", "json", timeout=900))
    key = json.loads(cli(fleet, "api-key", "create", "--cluster", "long", "-o", "json"))
    props = parse_properties(cli(fleet, "kafka-config", "--cluster", "long", "--api-key", key["key"],
                                 "--secret", key["secret"]))
    client = {k: v for k, v in props.items() if k != "sasl.jaas.config"}
    cli(fleet, "topic", "create", "bulk", "--cluster", "long", "--partitions", "6")
    rate = fill_topic(client, "bulk", DATA_MB << 20, keys=64, blob_bytes=64 << 10, timeout=3600)
    print(f"filled {DATA_MB} MiB at {rate / 2**20:.1f} MiB/s")
    topic = f"seq-{uuid.uuid4().hex[:6]}"
    cli(fleet, "topic", "create", topic, "--cluster", "long", "--partitions", "6")
    doc = json.loads(cli(fleet, "status", "-o", "json"))
    (pc,) = [c for c in doc["clusters"] if c["id"] not in ("system",)]

    def healthy() -> bool:
        now = json.loads(cli(fleet, "status", "-o", "json"))
        c = [x for x in now["clusters"] if x["id"] == pc["id"]]
        return bool(c) and c[0]["status"] == "HEALTHY" and c[0]["under_replicated_partitions"] == 0

    producer = SequenceProducer(client, topic, rate_per_s=200).start()
    try:
        for n in range(ROUNDS):
            sats = {s["name"]: s for s in json.loads(cli(fleet, "status", "-o", "json"))["satellites"]}
            name = rng.choice(sorted(sats))
            what = rng.choice(["zone", "satellite", "broker"])
            away = rng.uniform(20, 60)
            victims = {"zone": [sats[name]["pid"], *kafka_pids(name)],
                       "satellite": [sats[name]["pid"]],
                       "broker": kafka_pids(name, f"/clusters/{pc['id']}/")}[what]
            print(f"round {n + 1}: kill -9 the {what} of {name} ({victims}) for {away:.0f} s")
            killed_at = time.monotonic()
            for pid in victims:
                os.kill(pid, signal.SIGKILL)
            time.sleep(away)
            res = streamplane("up", "--detach", "--data-dir", str(fleet.data_dir), timeout=900)
            assert res.returncode == 0, res.stdout + res.stderr
            started = time.monotonic()
            wait_for(healthy, 900, f"the cluster healthy after round {n + 1}", interval=3)
            during = [t for t in list(producer.ack_times) if t >= killed_at - 1]
            gap = max((b - a for a, b in itertools.pairwise(during)), default=float("nan"))
            print(f"round {n + 1}: healthy again {time.monotonic() - started:.0f} s after the return; "
                  f"longest gap between acknowledgements since the kill {gap:.1f} s")
    finally:
        producer.stop()
    assert producer.errors == []
    times = producer.ack_times
    print(f"{len(producer.acked)} acknowledged; longest gap between acknowledgements "
          f"{max(b - a for a, b in itertools.pairwise(times)):.1f} s")
    values = consume_sequences(client, topic, len(producer.acked), 600)
    assert len(values) == len(set(values)), "a message was duplicated"
    assert set(values) >= producer.acked, f"{len(producer.acked - set(values))} acknowledged message(s) lost"
    assert cluster["availability"] == "multi-zone"
