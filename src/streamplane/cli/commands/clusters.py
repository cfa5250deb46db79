"""``streamplane cluster ...``: create, inspect, scale, balance and delete clusters."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import click

from streamplane.cli.api_client import ApiClient, ApiClientError
from streamplane.cli.commands.base import (
    OUTPUT,
    TIMEOUT,
    ApiGroup,
    CliError,
    dump,
    ids,
    pause_until,
    print_cluster,
    print_json,
    progress,
    shape,
    table,
    with_api,
)
from streamplane.models import api as s

RUNNING, FAILED, DELETING, DELETED = "RUNNING", "FAILED", "DELETING", "DELETED"
OP_SUCCEEDED = "SUCCEEDED"


@click.group(cls=ApiGroup)
def cluster() -> None:
    """Create, inspect and delete Kafka clusters."""


@cluster.command("create")
@click.argument("name")
@click.option("--type", "cluster_type", type=click.Choice(["dedicated", "basic", "standard"]), required=True,
              help="dedicated: a whole Kafka cluster sized in CKUs; basic/standard: a tenant on shared Kafka.")
@click.option("--cku", type=int, default=None, help="Capacity units (dedicated clusters only; required there).")
@click.option("--availability", type=click.Choice(list(s.AVAILABILITY_ZONES)), default=None,
              help="multi-zone: brokers in 3 zones (the fleet must span 3); single-zone (the default): one.")
@click.option("--zones", type=click.Choice(["1", "3"]), default=None,
              help="The older spelling of --availability: 3 is multi-zone (on a single host: rack labels).")
@click.option("--kafka-version", default=None, metavar="VERSION",
              help="Apache Kafka version (default: the newest supported).")
@click.option("--wait", is_flag=True, help="Return once the cluster is RUNNING; show progress on stderr.")
@TIMEOUT
@OUTPUT
@with_api
def cluster_create(api: ApiClient, name: str, cluster_type: str, cku: int | None, availability: str | None,
                   zones: str | None, kafka_version: str | None, wait: bool, timeout: float,
                   output: str) -> None:
    """Create cluster NAME. Without --wait it returns at once, while it is PROVISIONING."""
    accepted = api.create_cluster(name=name, type=cluster_type, cku=cku, zones=int(zones) if zones else None,
                                  availability=availability, kafka_version=kafka_version,
                                  idempotency_key=str(uuid.uuid4()))
    c = _wait_running(api, accepted, timeout) if wait else accepted.cluster
    if output == "json":
        print_json({**dump(c), "operation": dump(accepted.operation)})
        return
    print_cluster(c)
    if not wait:
        click.echo(f"operation {accepted.operation.id} is creating it; follow it with "
                   f"`streamplane cluster describe {c.name}`", err=True)


def _polls(api: ApiClient, accepted: s.ClusterAccepted) -> Iterator[tuple[s.ClusterOut | None, s.OperationOut]]:
    """The cluster (None once it is gone) and its operation, read again at each step."""
    c = accepted.cluster
    while True:
        op = api.get_operation(accepted.operation.id)
        try:
            c = api.get_cluster(c.id)
        except ApiClientError as exc:
            if exc.status != 404:
                raise
            yield None, op
            return
        yield c, op


def _wait_running(api: ApiClient, accepted: s.ClusterAccepted, timeout: float) -> s.ClusterOut:
    deadline = time.monotonic() + timeout
    name, said = accepted.cluster.name, ""
    for c, op in _polls(api, accepted):
        if c is None:
            raise CliError(f"cluster {name} was deleted while it was being created")
        said = progress(c, op, said, done=c.status == RUNNING)
        if c.status == RUNNING:
            return c
        if FAILED in (c.status, op.status):
            raise CliError(f"cluster {c.name} failed: {c.status_reason or op.error or 'no reason given'}")
        if c.status in (DELETING, DELETED):
            raise CliError(f"cluster {c.name} is being deleted, so it will not become RUNNING")
        pause_until(deadline, f"cluster {c.name} is not RUNNING after {timeout:g} s (it is {c.status}); "
                     f"it is still being created: follow it with `streamplane cluster describe {c.name}`")
    raise AssertionError("unreachable: the polls end only once the cluster is gone")


@cluster.command("list")
@OUTPUT
@with_api
def cluster_list(api: ApiClient, output: str) -> None:
    """Every cluster that is not deleted."""
    clusters = api.list_clusters()
    if output == "json":
        print_json([dump(c) for c in clusters])
        return
    if not clusters:
        click.echo("no clusters; create one with `streamplane cluster create NAME --type basic`")
        return
    table(["NAME", "ID", "TYPE", "STATUS", "KAFKA", "BOOTSTRAP"],
           [[c.name, c.id, shape(c), c.status, c.kafka_version, c.bootstrap or "-"] for c in clusters])


@cluster.command("describe")
@click.argument("name")
@OUTPUT
@with_api
def cluster_describe(api: ApiClient, name: str, output: str) -> None:
    """Show cluster NAME (a name or an id)."""
    c = api.get_cluster(name)
    if output == "json":
        print_json(dump(c))
    else:
        print_cluster(c)


@cluster.command("delete")
@click.argument("name")
@click.option("--wait", is_flag=True, help="Return once the cluster is gone; show progress on stderr.")
@TIMEOUT
@with_api
def cluster_delete(api: ApiClient, name: str, wait: bool, timeout: float) -> None:
    """Delete cluster NAME with its topics, API keys and data."""
    accepted = api.delete_cluster(name, idempotency_key=str(uuid.uuid4()))
    c = accepted.cluster
    if not wait:
        click.echo(f"deleting cluster {c.name} ({c.id}); operation {accepted.operation.id}")
        return
    _wait_gone(api, accepted, timeout)
    click.echo(f"deleted cluster {c.name} ({c.id})")


def _wait_gone(api: ApiClient, accepted: s.ClusterAccepted, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    said = ""
    for c, op in _polls(api, accepted):
        if c is None:
            return
        gone = c.status == DELETED or op.status == OP_SUCCEEDED
        said = progress(c, op, said, done=gone)
        if gone:
            return
        if FAILED in (c.status, op.status):
            raise CliError(f"deleting cluster {c.name} failed: "
                           f"{op.error or c.status_reason or 'no reason given'}")
        pause_until(deadline, f"cluster {c.name} is still {c.status} after {timeout:g} s; "
                     "the deletion goes on: check with `streamplane cluster list`")


@cluster.command("scale")
@click.argument("name")
@click.option("--cku", type=int, required=True, help="The new size in CKUs (dedicated clusters).")
@click.option("--wait", is_flag=True, help="Return once the cluster runs at its new size and is balanced; "
              "show progress (brokers, bytes moved, ETA) on stderr.")
@TIMEOUT
@OUTPUT
@with_api
def cluster_scale(api: ApiClient, name: str, cku: int, wait: bool, timeout: float, output: str) -> None:
    """Scale dedicated cluster NAME to --cku units, online: brokers are added and load moved
    onto them, or load is moved off the brokers that go before they are stopped."""
    accepted = api.scale_cluster(name, cku, idempotency_key=str(uuid.uuid4()))
    c = accepted.cluster
    if wait:
        c = _wait_operation(api, accepted, timeout, f"scaling cluster {c.name} to {cku} CKU")
    if output == "json":
        print_json({**dump(c), "operation": dump(api.get_operation(accepted.operation.id))})
        return
    if wait:
        click.echo(f"cluster {c.name} runs at {cku} CKU")
    else:
        click.echo(f"scaling cluster {c.name} to {cku} CKU; operation {accepted.operation.id}; follow it "
                   f"with `streamplane cluster describe {c.name}`")


def _wait_operation(api: ApiClient, accepted: s.ClusterAccepted, timeout: float, what: str) -> s.ClusterOut:
    deadline = time.monotonic() + timeout
    c, said = accepted.cluster, ""
    while True:
        op = api.get_operation(accepted.operation.id)
        c = api.get_cluster(c.id)
        said = progress(c, op, said, done=op.status == OP_SUCCEEDED)
        if op.status == OP_SUCCEEDED:
            return c
        if op.status == FAILED:
            raise CliError(f"{what} failed: {op.error or c.status_reason or 'no reason given'}")
        pause_until(deadline, f"{what} is not done after {timeout:g} s ({c.status_reason or c.status}); "
                     f"it goes on: follow it with `streamplane cluster describe {c.name}`")


@cluster.command("quarantine")
@click.argument("name")
@click.option("--release", is_flag=True, help="Move the tenant back to the shared cell.")
@click.option("--wait", is_flag=True, help="Return once every partition of the tenant is in its new cell.")
@TIMEOUT
@with_api
def cluster_quarantine(api: ApiClient, name: str, release: bool, wait: bool, timeout: float) -> None:
    """Move basic/standard cluster NAME (a noisy tenant) into the quarantine cell of its
    shared cluster, online; only its partitions move. --release moves it back."""
    accepted = api.quarantine(name, release=release)
    where = "the shared cell" if release else "quarantine"
    if wait:
        _wait_operation(api, accepted, timeout, f"moving cluster {name} to {where}")
        click.echo(f"cluster {name} is in {where}")
    else:
        click.echo(f"moving cluster {name} to {where}; operation {accepted.operation.id}")


@cluster.command("load")
@click.argument("name")
@OUTPUT
@with_api
def cluster_load(api: ApiClient, name: str, output: str) -> None:
    """Per-broker load of dedicated cluster NAME: replicas, leaders, disk, bytes in/out,
    and how far each balancing goal is from met."""
    load = api.cluster_load(name)
    if output == "json":
        print_json(dump(load))
        return
    click.echo(f"cluster {name} ({load.physical_cluster_id}): {len(load.brokers)} brokers, "
               f"{load.partitions} partitions")
    table(["BROKER", "ZONE", "CELL", "STATE", "REPLICAS", "LEADERS", "DISK", "IN/s", "OUT/s"],
           [[str(b["id"]), b["zone"], b["cell"], b["state"], str(b["replicas"]), str(b["leaders"]),
             _bytes(b["disk_bytes"]), _bytes(b["nw_in_bytes_per_s"]), _bytes(b["nw_out_bytes_per_s"])]
            for b in load.brokers])
    click.echo("goals (0% = met)")
    for goal, value in load.imbalance.items():
        click.echo(f"  {goal:<24} {_goal_value(goal, value)}")
    balance = load.balance or {}
    if balance:
        click.echo(f"balancer: {balance.get('state')}" + (f" ({balance['message']})" if balance.get("message") else ""))
    for note in load.notes:
        click.echo(f"note: {note}", err=True)


@cluster.command("rebalance")
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Show the plan (each move and why) without executing it.")
@click.option("--pause", "action", flag_value="pause", help="Pause the rebalance in progress.")
@click.option("--resume", "action", flag_value="resume", help="Resume a paused rebalance.")
@click.option("--cancel", "action", flag_value="cancel", help="Cancel the rebalance in progress.")
@OUTPUT
@with_api
def cluster_rebalance(api: ApiClient, name: str, dry_run: bool, action: str | None, output: str) -> None:
    """Rebalance dedicated cluster NAME now (the balancer also does it on its own when load
    stays uneven), or show what it would do with --dry-run."""
    if action:
        api.rebalance_action(name, action)
        click.echo(f"asked the balancer of {name} to {action}")
        return
    result = api.rebalance(name, dry_run=dry_run)
    if output == "json":
        print_json(result)
        return
    if not dry_run:
        click.echo(f"asked the balancer of {name} to rebalance; follow it with `streamplane cluster load {name}`")
        return
    plan = result["plan"]
    moves = plan.get("moves", [])
    click.echo(f"plan for {name}: {len(moves)} move(s), {_bytes(plan.get('bytes_to_move', 0))} to copy")
    for m in moves:
        click.echo(f"  {m['topic']}-{m['partition']}: {ids(m['old_replicas'])} -> {ids(m['replicas'])}"
                   f"  ({m.get('reason', '')})")
    table(["GOAL", "BEFORE", "AFTER"],
           [[g, _goal_value(g, v), _goal_value(g, plan.get("after", {}).get(g, 0.0))]
            for g, v in plan.get("before", {}).items()])
    for goal, why in plan.get("unmet", {}).items():
        click.echo(f"unmet: {goal}: {why}", err=True)


def _bytes(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _goal_value(goal: str, value: float) -> str:
    """Hard goals count what breaks them; soft goals are a relative spread."""
    if goal in ("rack-aware", "cell-containment", "broker-drain") or "capacity" in goal:
        return f"{value:g}"
    return f"{value:.0%}"
