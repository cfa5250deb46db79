"""``streamplane cluster ...`` against a real mothership API (no Kafka, no reconciler)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from streamplane.cli.api_client import ApiClient
from streamplane.cli.commands.base import POLL_INTERVAL_S
from streamplane.mothership.store import LogicalClusterStatus, OperationStatus
from streamplane.mothership.store.testing import dump_tables
from streamplane.versions import DEFAULT_KAFKA_VERSION

from .conftest import Invoke, LiveApi, one_error_line, only_error

#: how long the stand-in reconciler lingers in each state: longer than the CLI's poll interval
STEP_S = POLL_INTERVAL_S * 1.5


@contextmanager
def in_background(work: Callable[[], None]) -> Iterator[None]:
    """Run ``work`` (standing in for the reconciler) while the block runs the CLI."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name="fake-reconciler", daemon=True)
    thread.start()
    yield
    thread.join(30)
    assert not thread.is_alive() and not failure, failure


def test_create_prints_the_cluster_as_json_and_list_and_describe_agree(live_api: LiveApi,
                                                                      streamplane: Invoke) -> None:
    d = str(live_api.data_dir)
    res = streamplane("cluster", "create", "orders", "--type", "dedicated", "--cku", "2", "--zones", "3",
                      "-o", "json", "--data-dir", d)
    assert res.exit_code == 0, res.output
    created = json.loads(res.stdout)
    assert created["id"].startswith("lkc-")
    assert (created["name"], created["type"], created["cku"], created["zones"]) == ("orders", "dedicated", 2, 3)
    assert created["status"] == "PROVISIONING" and created["bootstrap"] is None
    assert created["kafka_version"] == DEFAULT_KAFKA_VERSION
    assert created["operation"]["kind"] == "create_cluster"
    assert created["operation"]["target_id"] == created["id"]

    res = streamplane("cluster", "list", "-o", "json", "--data-dir", d)
    assert res.exit_code == 0, res.output
    [listed] = json.loads(res.stdout)
    assert listed == {k: v for k, v in created.items() if k != "operation"}

    by_name = streamplane("cluster", "describe", "orders", "-o", "json", "--data-dir", d)
    by_id = streamplane("cluster", "describe", created["id"], "-o", "json", "--data-dir", d)
    assert by_name.exit_code == by_id.exit_code == 0
    assert json.loads(by_name.stdout) == json.loads(by_id.stdout) == listed

    # the create carried an Idempotency-Key, so a retried request is answered from the record
    assert "'POST /v1/clusters'" in dump_tables(live_api.store.url).split("idempotency_keys:")[1]


def test_text_output_of_create_list_describe(live_api: LiveApi, streamplane: Invoke) -> None:
    d = str(live_api.data_dir)
    res = streamplane("cluster", "list", "--data-dir", d)
    assert res.exit_code == 0 and res.stdout.startswith("no clusters; create one with")

    res = streamplane("cluster", "create", "web", "--type", "basic", "--data-dir", d)
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("cluster web (lkc-")
    assert "  status      PROVISIONING\n" in res.stdout
    assert "  type        basic, single-zone (1 zone)\n" in res.stdout
    assert "follow it with `streamplane cluster describe web`" in res.stderr

    res = streamplane("cluster", "list", "--data-dir", d)
    header, row = res.stdout.splitlines()
    assert header.split() == ["NAME", "ID", "TYPE", "STATUS", "KAFKA", "BOOTSTRAP"]
    assert row.split()[0] == "web" and "PROVISIONING" in row and DEFAULT_KAFKA_VERSION in row

    res = streamplane("cluster", "describe", "web", "--data-dir", d)
    assert res.exit_code == 0 and "bootstrap   (assigned once it runs)" in res.stdout


def test_availability_is_sent_and_shown(live_api: LiveApi, streamplane: Invoke) -> None:
    d = str(live_api.data_dir)
    res = streamplane("cluster", "create", "wide", "--type", "dedicated", "--cku", "1",
                      "--availability", "multi-zone", "-o", "json", "--data-dir", d)
    assert res.exit_code == 0, res.output
    created = json.loads(res.stdout)
    assert (created["availability"], created["zones"]) == ("multi-zone", 3)
    assert live_api.cluster_named("wide").zones == 3

    res = streamplane("cluster", "describe", "wide", "--data-dir", d)
    assert "  type        dedicated, 1 CKU, multi-zone (3 zones)\n" in res.stdout
    [row] = streamplane("cluster", "list", "--data-dir", d).stdout.splitlines()[1:]
    assert "multi-zone" in row

    assert "availability multi-zone means zones 3, but zones is 1" in only_error(streamplane(
        "cluster", "create", "odd", "--type", "basic", "--availability", "multi-zone", "--zones", "1",
        "--data-dir", d))
    assert "'triple-zone' is not one of 'single-zone', 'multi-zone'" in only_error(streamplane(
        "cluster", "create", "odd", "--type", "basic", "--availability", "triple-zone", "--data-dir", d))
    assert [c.name for c in live_api.store.logical_clusters.list()] == ["wide"]


def test_the_api_refusing_a_cluster_is_one_error_line(live_api: LiveApi, streamplane: Invoke) -> None:
    d = str(live_api.data_dir)
    assert only_error(streamplane("cluster", "create", "big", "--type", "dedicated", "--data-dir", d)) \
        == "a dedicated cluster needs cku (1 or more)"
    assert only_error(streamplane("cluster", "create", "b", "--type", "basic", "--cku", "2", "--data-dir", d)) \
        .startswith("a basic cluster has no cku")
    assert "Kafka version '1.0.0' is not supported" in only_error(
        streamplane("cluster", "create", "old", "--type", "basic", "--kafka-version", "1.0.0", "--data-dir", d))
    assert only_error(streamplane("cluster", "create", "bad name!", "--type", "basic", "--data-dir", d)) \
        .startswith("name: String should match pattern")

    assert streamplane("cluster", "create", "twice", "--type", "basic", "--data-dir", d).exit_code == 0
    assert "already exists" in only_error(
        streamplane("cluster", "create", "twice", "--type", "standard", "--data-dir", d))
    assert [c.name for c in live_api.store.logical_clusters.list()] == ["twice"]


def test_usage_errors_are_one_line_too(live_api: LiveApi, streamplane: Invoke) -> None:
    d = str(live_api.data_dir)
    message = only_error(streamplane("cluster", "create", "x", "--data-dir", d))
    assert message.startswith("Missing option '--type'")
    assert message.endswith("(see `cli cluster create --help`)")
    assert "'2' is not one of '1', '3'" in only_error(
        streamplane("cluster", "create", "x", "--type", "basic", "--zones", "2", "--data-dir", d))
    assert "No such command 'explode'" in only_error(streamplane("cluster", "explode"))
    assert "expected KEY=VALUE" in only_error(
        streamplane("topic", "create", "t", "--cluster", "c", "--config", "retention.ms", "--data-dir", d))
    assert live_api.store.logical_clusters.list() == []

    bare = streamplane("cluster")
    assert "Commands:" in bare.output and "create" in bare.output  # a bare group shows its help


def test_unknown_cluster(live_api: LiveApi, streamplane: Invoke) -> None:
    d = str(live_api.data_dir)
    for args in (["cluster", "describe", "nope"], ["cluster", "delete", "nope"],
                 ["api-key", "list", "--cluster", "nope"], ["topic", "list", "--cluster", "nope"]):
        assert only_error(streamplane(*args, "--data-dir", d)) == "no cluster with id or name 'nope'", args


def test_finding_the_api_and_its_token(live_api: LiveApi, streamplane: Invoke, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    message = only_error(streamplane("cluster", "list", "--data-dir", str(empty)))
    assert "run `streamplane up`, or pass --api-url" in message

    # the data dir also comes from the environment, and --api-url/--token from theirs
    assert streamplane("cluster", "list", env={"STREAMPLANE_DATA_DIR": str(live_api.data_dir)}).exit_code == 0
    res = streamplane("cluster", "list", "-o", "json", "--data-dir", str(empty),
                      env={"STREAMPLANE_API_URL": live_api.url, "STREAMPLANE_TOKEN": live_api.token})
    assert res.exit_code == 0 and json.loads(res.stdout) == []
    res = streamplane("cluster", "list", "--data-dir", str(empty), "--api-url", live_api.url,
                      "--token", live_api.token)
    assert res.exit_code == 0, res.output

    assert "no admin token" in only_error(
        streamplane("cluster", "list", "--data-dir", str(empty), "--api-url", live_api.url))
    message = only_error(streamplane("cluster", "list", "--data-dir", str(live_api.data_dir), "--token", "wrong"))
    assert message.startswith(f"the API at {live_api.url} refused the admin token from --token")
    message = only_error(streamplane("cluster", "list", "--data-dir", str(live_api.data_dir),
                                     env={"STREAMPLANE_TOKEN": "wrong"}))
    assert "refused the admin token" in message


def test_an_api_that_does_not_answer(live_api: LiveApi, streamplane: Invoke) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    message = only_error(streamplane("cluster", "list", "--data-dir", str(live_api.data_dir), "--api-url", dead))
    assert message.startswith(f"cannot reach the Streamplane API at {dead}")
    assert message.endswith("is it running? `streamplane up` starts it")


def test_wait_gives_up_after_the_timeout_and_the_cluster_stays(live_api: LiveApi, streamplane: Invoke) -> None:
    res = streamplane("cluster", "create", "slow", "--type", "basic", "--wait", "--timeout", "1.5",
                      "-o", "json", "--data-dir", str(live_api.data_dir))
    message = one_error_line(res)
    assert message.startswith("cluster slow is not RUNNING after 1.5 s (it is PROVISIONING)")
    assert "slow: PROVISIONING, 0%" in res.stderr.splitlines()
    assert res.stdout == ""
    [c] = live_api.store.logical_clusters.list()
    assert c.name == "slow" and c.status == LogicalClusterStatus.PROVISIONING


def test_wait_returns_the_running_cluster(live_api: LiveApi, streamplane: Invoke) -> None:
    store = live_api.store

    def reconcile() -> None:
        lc = live_api.cluster_named("fast")
        [op] = store.operations.list(target_id=lc.id)
        time.sleep(STEP_S)
        store.operations.update(op.id, status=OperationStatus.RUNNING, progress=50)
        store.logical_clusters.set_status(lc.id, LogicalClusterStatus.PROVISIONING, "starting 3 brokers")
        time.sleep(STEP_S)
        store.logical_clusters.set_status(lc.id, LogicalClusterStatus.RUNNING, bootstrap="127.0.0.1:19092")
        store.operations.update(op.id, status=OperationStatus.SUCCEEDED)

    with in_background(reconcile):
        res = streamplane("cluster", "create", "fast", "--type", "standard", "--wait", "--timeout", "30",
                          "-o", "json", "--data-dir", str(live_api.data_dir))
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert (doc["name"], doc["status"], doc["bootstrap"]) == ("fast", "RUNNING", "127.0.0.1:19092")
    assert res.stderr.splitlines() == ["fast: PROVISIONING, 0%", "fast: PROVISIONING, 50% (starting 3 brokers)",
                                       "fast: RUNNING, 100%"]


def test_wait_reports_why_the_cluster_failed(live_api: LiveApi, streamplane: Invoke) -> None:
    def fail() -> None:
        lc = live_api.cluster_named("doomed")
        live_api.store.logical_clusters.set_status(lc.id, LogicalClusterStatus.FAILED,
                                                   "no satellite has room for 3 brokers")

    with in_background(fail):
        res = streamplane("cluster", "create", "doomed", "--type", "dedicated", "--cku", "1", "--wait",
                          "--data-dir", str(live_api.data_dir))
    assert one_error_line(res) == "cluster doomed failed: no satellite has room for 3 brokers"
    assert "doomed: FAILED, 0% (no satellite has room for 3 brokers)" in res.stderr


def test_delete(live_api: LiveApi, streamplane: Invoke) -> None:
    d = str(live_api.data_dir)
    assert streamplane("cluster", "create", "gone", "--type", "basic", "--data-dir", d).exit_code == 0
    res = streamplane("cluster", "delete", "gone", "--data-dir", d)
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("deleting cluster gone (lkc-")
    res = streamplane("cluster", "describe", "gone", "-o", "json", "--data-dir", d)
    assert json.loads(res.stdout)["status"] == "DELETING"
    assert only_error(streamplane("cluster", "delete", "gone", "--data-dir", d)) \
        == "cluster gone is already being deleted"


def test_delete_wait_times_out_then_returns_once_the_cluster_is_gone(live_api: LiveApi,
                                                                     streamplane: Invoke) -> None:
    d = str(live_api.data_dir)
    for name in ("stuck", "quick"):
        assert streamplane("cluster", "create", name, "--type", "basic", "--data-dir", d).exit_code == 0

    res = streamplane("cluster", "delete", "stuck", "--wait", "--timeout", "1", "--data-dir", d)
    assert one_error_line(res).startswith("cluster stuck is still DELETING after 1 s; the deletion goes on")

    def finish() -> None:
        lc = live_api.cluster_named("quick")
        deadline = time.monotonic() + 10
        while live_api.store.logical_clusters.get(lc.id).status != LogicalClusterStatus.DELETING:
            assert time.monotonic() < deadline, "the CLI never asked to delete the cluster"
            time.sleep(0.05)
        live_api.store.logical_clusters.set_status(lc.id, LogicalClusterStatus.DELETED)

    with in_background(finish):
        res = streamplane("cluster", "delete", "quick", "--wait", "--timeout", "30", "--data-dir", d)
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("deleted cluster quick (lkc-")
    assert [c.name for c in live_api.store.logical_clusters.list()] == ["stuck"]


def test_a_retried_create_with_the_same_idempotency_key_creates_one_cluster(live_api: LiveApi) -> None:
    with ApiClient(live_api.url, live_api.token) as api:
        first = api.create_cluster(name="once", type="basic", idempotency_key="k-1")
        again = api.create_cluster(name="once", type="basic", idempotency_key="k-1")
    assert again.cluster.id == first.cluster.id and again.operation.id == first.operation.id
    assert len(live_api.store.logical_clusters.list()) == 1
