"""Kafka client quotas on tenants behind the gateway: rates held, throttling passed back, and
a noisy tenant kept from hurting its neighbour."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from streamplane.capacity import tenant_quotas
from streamplane.kafka import ClusterAdmin
from streamplane.testing import wait_for

from .conftest import SharedCluster, Tenant, TenantFactory, deadline_loop

pytestmark = [pytest.mark.kafka, pytest.mark.timing, pytest.mark.timeout(240)]

KIB = 1024
#: a rate this box can push well past, through the gateway, with room to spare
RATE_QUOTA = 512 * KIB
#: how far from the quota the rate measured over ``MEASURE_S`` may be
TOLERANCE = 0.15
#: Kafka measures a quota over a window of 11 one-second samples: a client pushing past
#: it bursts until the window's average exceeds the quota, then is throttled until the
#: burst has aged out, so its rate is a sawtooth of about that period. Measure after the
#: first burst is paid back, over three whole windows (any span of whole windows carries
#: the quota's worth of bytes; a partial one may catch a burst or a pause)
WARM_UP_S = 14.0
MEASURE_S = 33.0
#: a producer's rate is measured over whole throttle cycles (from a burst to a burst at
#: least 30 s later); this leaves room for them after the warm-up
PRODUCE_RUN_S = 62.0
PRODUCE_MEASURE_S = 30.0


def create_topic(tenant: Tenant, name: str, partitions: int = 1) -> None:
    admin = AdminClient(tenant.confluent())
    admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=15,
                        request_timeout=20)[name].result(30)
    wait_for(lambda: name in admin.list_topics(timeout=5).topics, 20, f"topic {name}")


def window_rate(events: list[tuple[float, int]], start: float, end: float) -> float:
    return sum(n for t, n in events if start <= t < end) / (end - start)


def burst_starts(events: list[tuple[float, int]], start: float, end: float,
                 quota: float, step: float = 0.5) -> list[float]:
    """When each burst of a client pushing past its quota begins: a ``step`` over twice the
    quota after 2 s under it."""
    buckets = [0] * int((end - start) // step)
    for t, n in events:
        i = int((t - start) // step)
        if 0 <= i < len(buckets):
            buckets[i] += n
    high = [b / step > 2 * quota for b in buckets]
    quiet = int(2 / step)
    return [start + i * step for i in range(quiet, len(high))
            if high[i] and not any(high[i - quiet:i])]


def timeline(events: list[tuple[float, int]], start: float, end: float, step: float = 2.0) -> str:
    """KiB/s in each ``step`` seconds from ``start``: what a failure report needs."""
    buckets = [0] * max(1, int((end - start) // step))
    for t, n in events:
        i = int((t - start) // step)
        if 0 <= i < len(buckets):
            buckets[i] += n
    return " ".join(f"{b / step / KIB:.0f}" for b in buckets)


def test_quotas_are_set_and_described(new_tenant: TenantFactory, super_admin: ClusterAdmin) -> None:
    tenant = new_tenant()
    assert super_admin.describe_client_quotas(tenant.key) == {}
    quotas = tenant_quotas("standard", brokers=1)
    super_admin.set_client_quotas(tenant.key, quotas)
    wait_for(lambda: super_admin.describe_client_quotas(tenant.key) == pytest.approx(quotas), 10,
             "the quotas to show")
    super_admin.set_client_quotas(tenant.key, {"request_percentage": None})
    wait_for(lambda: "request_percentage" not in super_admin.describe_client_quotas(tenant.key),
             10, "request_percentage to be removed")
    assert super_admin.describe_client_quotas(tenant.key)["producer_byte_rate"] == \
        quotas["producer_byte_rate"]
    super_admin.set_client_quotas(tenant.key, dict.fromkeys(quotas))
    wait_for(lambda: super_admin.describe_client_quotas(tenant.key) == {}, 10, "no quotas left")


def test_producer_is_held_to_its_produce_quota(
    new_tenant: TenantFactory, super_admin: ClusterAdmin,
) -> None:
    tenant = new_tenant()
    super_admin.set_client_quotas(tenant.key, {"producer_byte_rate": RATE_QUOTA})
    create_topic(tenant, "firehose", partitions=2)
    throttles: list[int] = []
    acked: list[tuple[float, int]] = []
    errors: list[KafkaError] = []
    producer = Producer(tenant.confluent(
        acks="all", **{"linger.ms": 10, "batch.size": 64 * KIB,
                       "queue.buffering.max.kbytes": 2048, "message.timeout.ms": 120000,
                       "throttle_cb": lambda event: throttles.append(event.throttle_time)}))

    def delivered(err: KafkaError | None, msg: Any) -> None:
        if err is None:
            acked.append((time.monotonic(), len(msg.value())))
        else:
            errors.append(err)

    value = b"x" * KIB
    start = time.monotonic()
    end = start + PRODUCE_RUN_S
    while time.monotonic() < end:
        try:
            producer.produce("firehose", value=value, on_delivery=delivered)
            producer.poll(0)
        except BufferError:
            producer.poll(0.05)
    producer.purge(in_queue=True, in_flight=False)
    producer.flush(30)

    # whole throttle cycles, from the first burst after the warm-up to the last burst
    # that starts at least PRODUCE_MEASURE_S later
    bursts = [t for t in burst_starts(acked, start, end, RATE_QUOTA) if t >= start + WARM_UP_S]
    print(f"produce quota {RATE_QUOTA} B/s: bursts at "
          f"{[round(t - start, 1) for t in bursts]} s; {len(throttles)} throttle events, "
          f"longest {max(throttles, default=0):.2f} s; KiB/s every 2 s: "
          f"{timeline(acked, start, end)}")
    first = bursts[0] if bursts else start + WARM_UP_S
    last = next((t for t in reversed(bursts) if t - first >= PRODUCE_MEASURE_S), None)
    assert last is not None, "no whole throttle cycles of 30 s: is the client throttled at all?"
    rate = window_rate(acked, first, last)
    print(f"produce quota {RATE_QUOTA} B/s: measured {rate:.0f} B/s over {last - first:.1f} s "
          f"({rate / RATE_QUOTA:.1%})")
    assert [e for e in errors if e.code() != KafkaError._PURGE_QUEUE] == []
    assert abs(rate - RATE_QUOTA) <= TOLERANCE * RATE_QUOTA, \
        f"produced {rate:.0f} B/s against a quota of {RATE_QUOTA} B/s"
    # the brokers' throttle times reached the client through the gateway
    assert any(t > 0 for t in throttles), "the client never heard it was throttled"


def drain(config: dict[str, Any], topic: str, group: str) -> tuple[list[tuple[float, int]], list[float], float]:
    """Consume ``topic`` as fast as the client may for ``WARM_UP_S + MEASURE_S`` from the first
    message: (time and size of each message, throttle times heard, when the first came)."""
    throttles: list[float] = []
    consumer = Consumer({**config, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "queued.max.messages.kbytes": 256,
                         "max.partition.fetch.bytes": 64 * KIB,
                         "throttle_cb": lambda event: throttles.append(event.throttle_time)})
    consumed: list[tuple[float, int]] = []
    try:
        consumer.subscribe([topic])
        for _ in deadline_loop(30):
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                consumed.append((time.monotonic(), len(msg.value())))
                break
        assert consumed, f"{group}: nothing within 30 s"
        end = consumed[0][0] + WARM_UP_S + MEASURE_S
        while time.monotonic() < end:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                consumed.append((time.monotonic(), len(msg.value())))
    finally:
        consumer.close()
    return consumed, throttles, consumed[0][0]


def test_consumer_is_held_to_its_fetch_quota(
    new_tenant: TenantFactory, super_admin: ClusterAdmin, cluster: SharedCluster,
) -> None:
    """Two tenants with the same fetch quota read the same backlog at the same time: one
    through the gateway, one straight from the broker. Kafka's fetch throttling with
    librdkafka is a coarse sawtooth (a burst of a few MiB, then empty throttled fetches for
    ~8 s) that averages well below the quota, and 33 s holds under three of its periods, so
    the measured rate depends on where the window falls: the quota must hold, and both
    consumers must be throttled into the same broad band."""
    tenant, direct = new_tenant(), new_tenant()
    for user in (tenant.key, direct.key):
        super_admin.set_client_quotas(user, {"consumer_byte_rate": RATE_QUOTA})
    super_admin.grant_client_access(direct.key, tenant.prefix)
    create_topic(tenant, "backlog")
    # a backlog the consumers cannot finish within the test, written around the gateway
    su = cluster.psc.super_user
    around = {"bootstrap.servers": cluster.bootstrap, "security.protocol": "SASL_PLAINTEXT",
              "sasl.mechanism": "SCRAM-SHA-512", "logger": tenant.confluent()["logger"]}
    filler = Producer({**around, "sasl.username": su.name,
                       "sasl.password": su.password.get_secret_value(), "linger.ms": 20,
                       # small batches: a fetch returns whole batches, so they set its grain
                       "batch.size": 64 * KIB})
    value = b"y" * 16 * KIB
    backlog = int((WARM_UP_S + MEASURE_S + 10) * RATE_QUOTA * 1.3)
    for _ in range(backlog // len(value)):
        while True:
            try:
                filler.produce(tenant.physical("backlog"), value=value)
                break
            except BufferError:
                filler.poll(0.05)
    assert filler.flush(60) == 0
    del filler

    results: dict[str, tuple[list[tuple[float, int]], list[float], float]] = {}
    runs = {
        "gateway": lambda: drain(tenant.confluent(), "backlog", "via-gateway"),
        "direct": lambda: drain({**around, "sasl.username": direct.key,
                                 "sasl.password": direct.secret}, tenant.physical("backlog"),
                                direct.prefix + "straight"),
    }
    threads = [threading.Thread(target=lambda n=n, f=f: results.__setitem__(n, f()))  # type: ignore[misc]
               for n, f in runs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WARM_UP_S + MEASURE_S + 60)
    assert set(results) == set(runs), "a consumer failed; see the log"

    rates = {}
    for name, (consumed, throttles, start) in results.items():
        end = start + WARM_UP_S + MEASURE_S
        rates[name] = window_rate(consumed, start + WARM_UP_S, end)
        print(f"fetch quota {RATE_QUOTA} B/s, {name}: measured {rates[name]:.0f} B/s over "
              f"{MEASURE_S:g} s ({rates[name] / RATE_QUOTA:.1%}); {len(throttles)} throttle "
              f"events; KiB/s every 2 s: {timeline(consumed, start, end)}")
        assert sum(n for _, n in consumed) < backlog, "the backlog ran out"
        assert any(t > 0 for t in throttles), f"{name}: the client never heard it was throttled"
    for name, rate in rates.items():
        assert 0.4 * RATE_QUOTA <= rate <= (1 + TOLERANCE) * RATE_QUOTA, (
            f"{name}: fetched {rate:.0f} B/s under a quota of {RATE_QUOTA} B/s")


# ---- noisy neighbour --------------------------------------------------------------------

#: the noisy tenant's produce quota: low enough that, saturated, it leaves the broker and
#: the gateway to its neighbours
NOISY_QUOTA = 64 * KIB
#: the quiet tenant: a steady, moderate, latency-sensitive producer
STEADY_RATE = 200  # messages/s
#: each phase: switch the noisy tenant, let it settle, then measure the quiet one
SETTLE_S = 4.0
PHASE_S = 6.0
PAIRS = 6
MAX_P99_INCREASE = 0.20

#: the noisy tenant runs in its own process (its own GIL and librdkafka), driven by lines
#: on stdin: "noisy", "idle", "stats" (answers the bytes acknowledged so far), "quit".
#: It runs niced: on a real deployment a tenant's clients run on the tenant's machines, and
#: what is under test is the shared path (gateway, brokers), not this box's scheduler
NOISY_CLIENT = """
import json, os, sys, threading, time
from confluent_kafka import Producer

os.nice(10)
config, topic = json.loads(sys.argv[1]), sys.argv[2]
producer = Producer(config)
state = {"noisy": False, "quit": False, "acked": 0}

def delivered(err, msg):
    if err is None:
        state["acked"] += len(msg.value())

def commands():
    for line in sys.stdin:
        line = line.strip()
        if line == "stats":
            print(json.dumps({"acked": state["acked"]}), flush=True)
            continue
        state["noisy"] = line == "noisy"
        state["quit"] = line == "quit"
        if line == "idle":
            producer.purge(in_queue=True, in_flight=False)
        print("ok", flush=True)
        if state["quit"]:
            return

threading.Thread(target=commands, daemon=True).start()
value = b"n" * 16384
while not state["quit"]:
    if not state["noisy"]:
        producer.poll(0.05)
        continue
    try:
        producer.produce(topic, value=value, on_delivery=delivered)
        producer.poll(0)
    except BufferError:
        producer.poll(0.01)
producer.purge()
producer.flush(10)
"""


class NoisyTenant:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc

    def command(self, line: str) -> str:
        stdin: IO[str] | None = self.proc.stdin
        stdout: IO[str] | None = self.proc.stdout
        assert stdin is not None and stdout is not None
        stdin.write(line + "\n")
        stdin.flush()
        answer: list[str] = []
        reader = threading.Thread(target=lambda: answer.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(15)
        assert answer and answer[0], f"the noisy client did not answer {line!r}"
        return answer[0].strip()

    def acked(self) -> int:
        return int(json.loads(self.command("stats"))["acked"])


@contextmanager
def noisy_tenant(tenant: Tenant, topic: str, tmp_path: Path) -> Iterator[NoisyTenant]:
    config = {k: v for k, v in tenant.confluent().items() if k != "logger"}
    config.update({"acks": "all", "linger.ms": 5, "queue.buffering.max.kbytes": 1024,
                   "message.timeout.ms": 120000})
    script = tmp_path / "noisy_client.py"
    script.write_text(NOISY_CLIENT)
    proc = subprocess.Popen([sys.executable, str(script), json.dumps(config), topic],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        yield NoisyTenant(proc)
    finally:
        if proc.poll() is None:
            try:
                assert proc.stdin is not None
                proc.stdin.write("quit\n")
                proc.stdin.flush()
                proc.wait(20)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait(10)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def test_noisy_tenant_does_not_move_its_neighbours_p99(
    new_tenant: TenantFactory, super_admin: ClusterAdmin, tmp_path: Path,
) -> None:
    noisy, quiet = new_tenant(), new_tenant()
    super_admin.set_client_quotas(noisy.key, {"producer_byte_rate": NOISY_QUOTA})
    create_topic(noisy, "spam", partitions=2)
    create_topic(quiet, "orders", partitions=2)

    latencies: list[tuple[float, float]] = []
    errors: list[KafkaError] = []

    def delivered(err: KafkaError | None, msg: Any) -> None:
        if err is None:
            latencies.append((time.monotonic(), msg.latency()))
        else:
            errors.append(err)

    producer = Producer(quiet.confluent(acks="all", **{"linger.ms": 0,
                                                       "message.timeout.ms": 30000}))
    value = b"q" * KIB
    interval = 1.0 / STEADY_RATE
    next_send = time.monotonic()

    def steady_until(deadline: float) -> None:
        nonlocal next_send
        while (now := time.monotonic()) < deadline:
            # a stall of this process is not the quiet tenant's load: do not catch up on it
            next_send = max(next_send, now - 0.5)
            if now >= next_send:
                producer.produce("orders", value=value, on_delivery=delivered)
                next_send += interval
                producer.poll(0)
            else:
                producer.poll(min(next_send - now, deadline - now))

    windows: dict[str, list[float]] = {"idle": [], "noisy": []}
    noisy_bytes, noisy_time = 0, 0.0
    with noisy_tenant(noisy, "spam", tmp_path) as neighbour:
        steady_until(time.monotonic() + 3)  # connections up, first batches through
        for pair in range(PAIRS):
            order = ("idle", "noisy") if pair % 2 == 0 else ("noisy", "idle")
            for phase in order:
                acked_before, switched = neighbour.acked(), time.monotonic()
                assert neighbour.command(phase) == "ok"
                steady_until(time.monotonic() + SETTLE_S)
                start = time.monotonic()
                steady_until(start + PHASE_S)
                end = time.monotonic()
                if phase == "noisy":
                    noisy_bytes += neighbour.acked() - acked_before
                    noisy_time += end - switched
                window = [lat for t, lat in latencies if start <= t < end]
                windows[phase].append(p99(window))
        neighbour.command("idle")
    producer.flush(30)

    idle_p99 = statistics.median(windows["idle"])
    noisy_p99 = statistics.median(windows["noisy"])
    print(f"quiet tenant p99 (ms) with the neighbour idle: "
          f"{[round(x * 1000, 2) for x in windows['idle']]}, median {idle_p99 * 1000:.2f}; "
          f"noisy: {[round(x * 1000, 2) for x in windows['noisy']]}, median {noisy_p99 * 1000:.2f}; "
          f"noisy tenant produced {noisy_bytes / noisy_time / KIB:.0f} KiB/s while noisy "
          f"(quota {NOISY_QUOTA // KIB} KiB/s)")
    assert errors == []
    # the noisy tenant really was pushing at its quota (a little over: after each idle
    # phase Kafka lets it catch up on the quota window)
    assert noisy_bytes / noisy_time >= 0.8 * NOISY_QUOTA
    assert noisy_p99 <= idle_p99 * (1 + MAX_P99_INCREASE), (
        f"the quiet tenant's p99 went from {idle_p99 * 1000:.2f} ms to "
        f"{noisy_p99 * 1000:.2f} ms with its neighbour saturating its quota")
