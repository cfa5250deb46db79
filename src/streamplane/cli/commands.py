"""``streamplane cluster | api-key | topic | kafka-config``: the mothership's REST API from a shell.

Thin: find the API, call it, print. Every error a user can cause is one line on stderr,
``error: <what was wrong and what to do>``, and a non-zero exit.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import click
from pydantic import BaseModel

from streamplane.cli.api_client import ApiClient, ApiClientError
from streamplane.gateway.sasl import SUPPORTED_MECHANISMS
from streamplane.models import api as s
from streamplane.mothership.server import MothershipLayout
from streamplane.paths import default_data_dir

DEFAULT_WAIT_TIMEOUT_S = 900.0
POLL_INTERVAL_S = 1.0

SECURITY_PROTOCOL = "SASL_PLAINTEXT"
SASL_MECHANISM = "SCRAM-SHA-512"
JAAS_LOGIN_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"

RUNNING, FAILED, DELETING, DELETED = "RUNNING", "FAILED", "DELETING", "DELETED"
OP_SUCCEEDED = "SUCCEEDED"


# ---- one-line errors ----------------------------------------------------------------------


class CliError(click.ClickException):
    """A user error: printed as one ``error: ...`` line; exit status 1."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.message}", err=True)


class _OneLineUsageError(click.UsageError):
    def show(self, file: IO[Any] | None = None) -> None:
        where = f" (see `{self.ctx.command_path} --help`)" if self.ctx else ""
        click.echo(f"error: {' '.join(self.format_message().split())}{where}", err=True)


def _one_line(exc: click.UsageError) -> click.UsageError:
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        return exc  # a bare `streamplane topic` shows the help, as a group should
    return _OneLineUsageError(exc.format_message(), exc.ctx)


class ApiCommand(click.Command):
    """A command whose usage errors (missing option, bad value) print one line too."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            raise _one_line(exc) from None


class ApiGroup(click.Group):
    command_class = ApiCommand

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            raise _one_line(exc) from None

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            raise _one_line(exc) from None


# ---- finding the API ----------------------------------------------------------------------


@dataclass(frozen=True)
class ApiTarget:
    url: str
    token: str
    #: where the token came from, to name in an "unauthorized" error
    token_source: str


def find_api(api_url: str | None, token: str | None, data_dir: Path | None) -> ApiTarget:
    """``--api-url``/``--token`` (or their environment variables) win; otherwise what
    ``streamplane up`` recorded in the data directory."""
    layout = MothershipLayout((data_dir or default_data_dir()).expanduser().absolute())
    url = api_url or layout.api_url()
    if not url:
        raise CliError(f"no Streamplane API found ({layout.endpoint_file} does not exist): run "
                       "`streamplane up`, or pass --api-url (or set STREAMPLANE_API_URL)")
    if token:
        return ApiTarget(url, token, "--token / STREAMPLANE_TOKEN")
    try:
        stored = layout.token_file.read_text().strip()
    except OSError:
        stored = ""
    if not stored:
        raise CliError(f"no admin token ({layout.token_file} does not exist): pass --token "
                       "(or set STREAMPLANE_TOKEN), or run `streamplane up`, which writes it")
    return ApiTarget(url, stored, str(layout.token_file))


def _explain(exc: ApiClientError, target: ApiTarget) -> str:
    if exc.code == "unauthorized":
        return (f"the API at {target.url} refused the admin token from {target.token_source}; "
                "pass the right one with --token (or STREAMPLANE_TOKEN)")
    if exc.code == "unreachable":
        return f"{exc.message}; is it running? `streamplane up` starts it"
    return exc.message


_API_OPTIONS = (
    click.option("--api-url", envvar="STREAMPLANE_API_URL", default=None, metavar="URL",
                 help="The mothership API (default: the one `streamplane up` recorded)."),
    click.option("--token", envvar="STREAMPLANE_TOKEN", default=None, metavar="TOKEN",
                 help="Admin bearer token (default: DATA_DIR/admin-token)."),
    click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                 help="Streamplane's data directory, where `up` records the API URL and token."),
)


def with_api(command: Callable[..., None]) -> Callable[..., None]:
    """Add --api-url/--token/--data-dir; call ``command(api, ...)`` with a connected client
    and turn every ApiClientError into one ``error:`` line."""

    @functools.wraps(command)
    def run(*args: Any, api_url: str | None, token: str | None, data_dir: Path | None,
            **kwargs: Any) -> None:
        target = find_api(api_url, token, data_dir)
        with ApiClient(target.url, target.token) as api:
            try:
                command(api, *args, **kwargs)
            except ApiClientError as exc:
                raise CliError(_explain(exc, target)) from None

    for option in reversed(_API_OPTIONS):
        run = option(run)
    return run


OUTPUT = click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text",
                      show_default=True, help="Output format; json is stable and machine-readable.")
CLUSTER = click.option("--cluster", "cluster_ref", required=True, metavar="NAME",
                       help="The cluster, by name or id.")
TIMEOUT = click.option("--timeout", type=click.FloatRange(min=0, min_open=True),
                       default=DEFAULT_WAIT_TIMEOUT_S, show_default=True,
                       help="Seconds --wait waits before giving up.")


# ---- output -------------------------------------------------------------------------------


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


def _print_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2))


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    rows = list(rows)
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    for row in (headers, *rows):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _when(moment: datetime | None) -> str:
    return moment.isoformat(sep=" ", timespec="seconds") if moment else "-"


def _shape(c: s.ClusterOut) -> str:
    size = f", {c.cku} CKU" if c.cku else ""
    return f"{c.type}{size}, {c.zones} zone{'s' if c.zones != 1 else ''}"


def _print_cluster(c: s.ClusterOut) -> None:
    reason = f" ({c.status_reason})" if c.status_reason else ""
    click.echo(f"cluster {c.name} ({c.id})")
    click.echo(f"  type        {_shape(c)}")
    click.echo(f"  status      {c.status}{reason}")
    click.echo(f"  kafka       {c.kafka_version}")
    click.echo(f"  bootstrap   {c.bootstrap or '(assigned once it runs)'}")
    click.echo(f"  generation  {c.generation}")
    click.echo(f"  created     {_when(c.created_at)}")


def _print_topic(t: s.TopicOut) -> None:
    click.echo(f"topic {t.name}")
    click.echo(f"  partitions          {t.partitions}")
    click.echo(f"  replication factor  {t.replication_factor}")
    if t.configs:
        click.echo("  configs")
        for key, value in sorted(t.configs.items()):
            click.echo(f"    {key}={value}")
    if t.partition_details:
        _table(["  PARTITION", "LEADER", "REPLICAS", "ISR"],
               [[f"  {p.get('partition')}", str(p.get("leader")), _ids(p.get("replicas")), _ids(p.get("isr"))]
                for p in t.partition_details])


def _ids(values: Any) -> str:
    return ",".join(str(v) for v in values or [])


def _progress(c: s.ClusterOut, op: s.OperationOut, said: str, *, done: bool) -> str:
    """Print a progress line on stderr when it differs from the last one; return it."""
    why = c.status_reason or op.error or ""
    # the cluster may reach its goal a moment before its operation is marked finished
    percent = 100.0 if done else op.progress
    line = f"{c.name}: {c.status}, {percent:.0f}%" + (f" ({why})" if why else "")
    if line != said:
        click.echo(line, err=True)
    return line


def _pause_until(deadline: float, on_timeout: str) -> None:
    left = deadline - time.monotonic()
    if left <= 0:
        raise CliError(on_timeout)
    time.sleep(min(POLL_INTERVAL_S, left))


# ---- cluster ------------------------------------------------------------------------------


@click.group(cls=ApiGroup)
def cluster() -> None:
    """Create, inspect and delete Kafka clusters."""


@cluster.command("create")
@click.argument("name")
@click.option("--type", "cluster_type", type=click.Choice(["dedicated", "basic", "standard"]), required=True,
              help="dedicated: a whole Kafka cluster sized in CKUs; basic/standard: a tenant on shared Kafka.")
@click.option("--cku", type=int, default=None, help="Capacity units (dedicated clusters only; required there).")
@click.option("--zones", type=click.Choice(["1", "3"]), default=None, help="Availability zones (default 1).")
@click.option("--kafka-version", default=None, metavar="VERSION",
              help="Apache Kafka version (default: the newest supported).")
@click.option("--wait", is_flag=True, help="Return once the cluster is RUNNING; show progress on stderr.")
@TIMEOUT
@OUTPUT
@with_api
def cluster_create(api: ApiClient, name: str, cluster_type: str, cku: int | None, zones: str | None,
                   kafka_version: str | None, wait: bool, timeout: float, output: str) -> None:
    """Create cluster NAME. Without --wait it returns at once, while it is PROVISIONING."""
    accepted = api.create_cluster(name=name, type=cluster_type, cku=cku, zones=int(zones) if zones else None,
                                  kafka_version=kafka_version, idempotency_key=str(uuid.uuid4()))
    c = _wait_running(api, accepted, timeout) if wait else accepted.cluster
    if output == "json":
        _print_json({**_dump(c), "operation": _dump(accepted.operation)})
        return
    _print_cluster(c)
    if not wait:
        click.echo(f"operation {accepted.operation.id} is creating it; follow it with "
                   f"`streamplane cluster describe {c.name}`", err=True)


def _wait_running(api: ApiClient, accepted: s.ClusterAccepted, timeout: float) -> s.ClusterOut:
    deadline = time.monotonic() + timeout
    c, said = accepted.cluster, ""
    while True:
        op = api.get_operation(accepted.operation.id)
        try:
            c = api.get_cluster(c.id)
        except ApiClientError as exc:
            if exc.status == 404:
                raise CliError(f"cluster {c.name} was deleted while it was being created") from None
            raise
        said = _progress(c, op, said, done=c.status == RUNNING)
        if c.status == RUNNING:
            return c
        if FAILED in (c.status, op.status):
            raise CliError(f"cluster {c.name} failed: {c.status_reason or op.error or 'no reason given'}")
        if c.status in (DELETING, DELETED):
            raise CliError(f"cluster {c.name} is being deleted, so it will not become RUNNING")
        _pause_until(deadline, f"cluster {c.name} is not RUNNING after {timeout:g} s (it is {c.status}); "
                     f"it is still being created: follow it with `streamplane cluster describe {c.name}`")


@cluster.command("list")
@OUTPUT
@with_api
def cluster_list(api: ApiClient, output: str) -> None:
    """Every cluster that is not deleted."""
    clusters = api.list_clusters()
    if output == "json":
        _print_json([_dump(c) for c in clusters])
        return
    if not clusters:
        click.echo("no clusters; create one with `streamplane cluster create NAME --type basic`")
        return
    _table(["NAME", "ID", "TYPE", "STATUS", "KAFKA", "BOOTSTRAP"],
           [[c.name, c.id, _shape(c), c.status, c.kafka_version, c.bootstrap or "-"] for c in clusters])


@cluster.command("describe")
@click.argument("name")
@OUTPUT
@with_api
def cluster_describe(api: ApiClient, name: str, output: str) -> None:
    """Show cluster NAME (a name or an id)."""
    c = api.get_cluster(name)
    if output == "json":
        _print_json(_dump(c))
    else:
        _print_cluster(c)


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
    c, said = accepted.cluster, ""
    while True:
        op = api.get_operation(accepted.operation.id)
        try:
            c = api.get_cluster(c.id)
        except ApiClientError as exc:
            if exc.status == 404:
                return
            raise
        gone = c.status == DELETED or op.status == OP_SUCCEEDED
        said = _progress(c, op, said, done=gone)
        if gone:
            return
        if FAILED in (c.status, op.status):
            raise CliError(f"deleting cluster {c.name} failed: "
                           f"{op.error or c.status_reason or 'no reason given'}")
        _pause_until(deadline, f"cluster {c.name} is still {c.status} after {timeout:g} s; "
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
        _print_json({**_dump(c), "operation": _dump(api.get_operation(accepted.operation.id))})
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
        said = _progress(c, op, said, done=op.status == OP_SUCCEEDED)
        if op.status == OP_SUCCEEDED:
            return c
        if op.status == FAILED:
            raise CliError(f"{what} failed: {op.error or c.status_reason or 'no reason given'}")
        _pause_until(deadline, f"{what} is not done after {timeout:g} s ({c.status_reason or c.status}); "
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
        _print_json(_dump(load))
        return
    click.echo(f"cluster {name} ({load.physical_cluster_id}): {len(load.brokers)} brokers, "
               f"{load.partitions} partitions")
    _table(["BROKER", "ZONE", "CELL", "STATE", "REPLICAS", "LEADERS", "DISK", "IN/s", "OUT/s"],
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
        _print_json(result)
        return
    if not dry_run:
        click.echo(f"asked the balancer of {name} to rebalance; follow it with `streamplane cluster load {name}`")
        return
    plan = result["plan"]
    moves = plan.get("moves", [])
    click.echo(f"plan for {name}: {len(moves)} move(s), {_bytes(plan.get('bytes_to_move', 0))} to copy")
    for m in moves:
        click.echo(f"  {m['topic']}-{m['partition']}: {_ids(m['old_replicas'])} -> {_ids(m['replicas'])}"
                   f"  ({m.get('reason', '')})")
    _table(["GOAL", "BEFORE", "AFTER"],
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


# ---- API keys -----------------------------------------------------------------------------


@click.group("api-key", cls=ApiGroup)
def api_key() -> None:
    """API keys: the SASL credentials Kafka clients use to reach a cluster."""


@api_key.command("create")
@CLUSTER
@click.option("--description", default="", help="What the key is for.")
@OUTPUT
@with_api
def api_key_create(api: ApiClient, cluster_ref: str, description: str, output: str) -> None:
    """Issue a key and secret for a RUNNING cluster. The secret is shown only now."""
    issued = api.create_api_key(cluster_ref, description=description, idempotency_key=str(uuid.uuid4())).api_key
    if output == "json":
        _print_json(_dump(issued))
        return
    click.echo(f"key      {issued.key}")
    click.echo(f"secret   {issued.secret}")
    click.echo(f"cluster  {issued.cluster_id}")
    click.echo("the secret is shown only now: keep it safe. A client config: streamplane kafka-config "
               f"--cluster {cluster_ref} --api-key {issued.key} --secret SECRET", err=True)


@api_key.command("list")
@CLUSTER
@OUTPUT
@with_api
def api_key_list(api: ApiClient, cluster_ref: str, output: str) -> None:
    """The cluster's API keys that are not revoked (never their secrets)."""
    keys = api.list_api_keys(cluster_ref)
    if output == "json":
        _print_json([_dump(k) for k in keys])
        return
    if not keys:
        click.echo(f"no API keys; create one with `streamplane api-key create --cluster {cluster_ref}`")
        return
    _table(["KEY", "CREATED", "DESCRIPTION"], [[k.key, _when(k.created_at), k.description] for k in keys])


@api_key.command("revoke")
@click.argument("key")
@with_api
def api_key_revoke(api: ApiClient, key: str) -> None:
    """Revoke KEY: clients using it can no longer connect."""
    api.revoke_api_key(key)
    click.echo(f"revoked API key {key}")


# ---- topics -------------------------------------------------------------------------------


def _parse_configs(_: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    configs: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, e.g. retention.ms=86400000; got {item!r}", param=param)
        if configs.get(key, value) != value:
            raise click.BadParameter(f"{key} is given twice with different values", param=param)
        configs[key] = value
    return configs


CONFIG = click.option("--config", "configs", multiple=True, callback=_parse_configs, metavar="KEY=VALUE",
                      help="A topic config override, e.g. retention.ms=86400000 (repeatable).")


@click.group(cls=ApiGroup)
def topic() -> None:
    """Create, inspect, change and delete a cluster's topics."""


@topic.command("create")
@click.argument("name")
@CLUSTER
@click.option("--partitions", type=click.IntRange(min=1), default=None, help="Partition count (default 3).")
@click.option("--replication-factor", type=click.IntRange(min=1), default=None,
              help="Replicas per partition (default: the cluster's).")
@CONFIG
@OUTPUT
@with_api
def topic_create(api: ApiClient, name: str, cluster_ref: str, partitions: int | None,
                 replication_factor: int | None, configs: dict[str, str], output: str) -> None:
    """Create topic NAME in a RUNNING cluster."""
    accepted = api.create_topic(cluster_ref, name=name, partitions=partitions,
                                replication_factor=replication_factor, configs=configs,
                                idempotency_key=str(uuid.uuid4()))
    _print_topic_result(accepted.topic or api.get_topic(cluster_ref, name), output)


@topic.command("list")
@CLUSTER
@OUTPUT
@with_api
def topic_list(api: ApiClient, cluster_ref: str, output: str) -> None:
    """The cluster's topics."""
    topics = api.list_topics(cluster_ref)
    if output == "json":
        _print_json([_dump(t) for t in topics])
        return
    if not topics:
        click.echo(f"no topics; create one with `streamplane topic create NAME --cluster {cluster_ref}`")
        return
    _table(["NAME", "PARTITIONS", "REPLICATION"],
           [[t.name, str(t.partitions), str(t.replication_factor)] for t in topics])


@topic.command("describe")
@click.argument("name")
@CLUSTER
@OUTPUT
@with_api
def topic_describe(api: ApiClient, name: str, cluster_ref: str, output: str) -> None:
    """Partitions, replicas, leaders and config overrides of topic NAME."""
    _print_topic_result(api.get_topic(cluster_ref, name), output)


@topic.command("update")
@click.argument("name")
@CLUSTER
@CONFIG
@click.option("--delete-config", "deletes", multiple=True, metavar="KEY",
              help="Remove a config override, back to the cluster default (repeatable).")
@click.option("--partitions", type=click.IntRange(min=1), default=None,
              help="New total partition count (it can only grow).")
@OUTPUT
@with_api
def topic_update(api: ApiClient, name: str, cluster_ref: str, configs: dict[str, str],
                 deletes: tuple[str, ...], partitions: int | None, output: str) -> None:
    """Change topic NAME's config overrides or grow its partitions."""
    if not (configs or deletes or partitions):
        raise CliError("nothing to change: pass --config KEY=VALUE, --delete-config KEY or --partitions N")
    both = sorted(set(configs) & set(deletes))
    if both:
        raise CliError(f"{', '.join(both)}: both set with --config and removed with --delete-config")
    changes: dict[str, str | None] = {**configs, **dict.fromkeys(deletes)}
    accepted = api.update_topic(cluster_ref, name, configs=changes, partitions=partitions)
    _print_topic_result(accepted.topic or api.get_topic(cluster_ref, name), output)


@topic.command("delete")
@click.argument("name")
@CLUSTER
@with_api
def topic_delete(api: ApiClient, name: str, cluster_ref: str) -> None:
    """Delete topic NAME and its data."""
    api.delete_topic(cluster_ref, name)
    click.echo(f"deleted topic {name} from cluster {cluster_ref}")


def _print_topic_result(t: s.TopicOut, output: str) -> None:
    if output == "json":
        _print_json(_dump(t))
    else:
        _print_topic(t)


# ---- client configuration -----------------------------------------------------------------


@click.command("kafka-config", cls=ApiCommand)
@CLUSTER
@click.option("--api-key", "key", required=True, metavar="KEY", help="An API key of the cluster.")
@click.option("--secret", required=True, envvar="STREAMPLANE_API_SECRET", metavar="SECRET",
              help="The key's secret (or set STREAMPLANE_API_SECRET, which keeps it out of shell history).")
@click.option("--format", "fmt", type=click.Choice(["properties", "librdkafka-json"]), default="properties",
              show_default=True,
              help="properties: a client properties file, with the Java-only sasl.jaas.config line; "
                   "librdkafka-json: a JSON dict of the same settings without that line, which librdkafka "
                   "rejects.")
@with_api
def kafka_config(api: ApiClient, cluster_ref: str, key: str, secret: str, fmt: str) -> None:
    """Print the settings a Kafka client needs to reach the cluster with an API key.

    The default properties format is ready for Java clients (--producer.config,
    --command-config). librdkafka-based clients (confluent-kafka, kcat, ...) do not
    know sasl.jaas.config: use --format librdkafka-json for a JSON dict without it.
    """
    c = api.get_cluster(cluster_ref)
    live = {k.key for k in api.list_api_keys(c.id)}
    if key not in live:
        raise CliError(f"cluster {c.name} has no live API key {key}; create one with "
                       f"`streamplane api-key create --cluster {c.name}`")
    if not c.bootstrap:
        raise CliError(f"cluster {c.name} has no bootstrap address yet (it is {c.status}); "
                       "try again once it is RUNNING")
    settings = client_settings(c.bootstrap, key, secret, c.security_protocol)
    if fmt == "librdkafka-json":
        _print_json(settings)
        return
    settings["sasl.jaas.config"] = (f'{JAAS_LOGIN_MODULE} required username={_jaas_quote(key)} '
                                    f'password={_jaas_quote(secret)};')
    if c.type != "dedicated":
        click.echo(f"# {c.name} ({c.type}) is served by a Streamplane gateway; it takes "
                   f"{', '.join(SUPPORTED_MECHANISMS)}")
    if c.security_protocol == "SASL_SSL":
        click.echo("# TLS: trust the CA that signed the gateway certificate "
                   "(ssl.truststore.location for Java clients, ssl.ca.location for librdkafka)")
    for name, value in settings.items():
        click.echo(f"{name}={_properties_escape(value)}")


def client_settings(bootstrap: str, key: str, secret: str,
                    security_protocol: str = SECURITY_PROTOCOL) -> dict[str, str]:
    """The settings Java clients and librdkafka share, by their common names."""
    return {
        "bootstrap.servers": bootstrap,
        "security.protocol": security_protocol,
        "sasl.mechanism": SASL_MECHANISM,
        "sasl.username": key,
        "sasl.password": secret,
    }


def _jaas_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _properties_escape(value: str) -> str:
    """A value as java.util.Properties reads it back unchanged."""
    out = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return "\\" + out if out.startswith((" ", "\f")) else out


# ---- gateways -----------------------------------------------------------------------------


@click.group(cls=ApiGroup)
def gateway() -> None:
    """The gateways in front of shared clusters (basic and standard clusters' bootstrap)."""


@gateway.command("list")
@OUTPUT
@with_api
def gateway_list(api: ApiClient, output: str) -> None:
    """Each gateway: its bootstrap, security protocol and the certificate it serves."""
    gateways = api.list_gateways()
    if output == "json":
        _print_json([_dump(g) for g in gateways])
        return
    for g in gateways:
        cert = g.certificate
        served = (f"certificate serial {cert.get('serial')}, {cert.get('subject')}, valid until "
                  f"{cert.get('not_after')}" if cert else "no TLS")
        click.echo(f"{g.physical_cluster}: {g.bootstrap or '(not listening yet)'} "
                   f"({g.security_protocol or 'starting'}), {served}")


@gateway.command("reload-tls")
@with_api
def gateway_reload_tls(api: ApiClient) -> None:
    """Make every gateway load its certificate files now (they are also watched): new
    connections get the new certificate, open connections keep theirs."""
    asked = api.reload_gateway_tls().asked
    click.echo(f"asked {len(asked)} gateway(s) to reload their certificate; "
               "`streamplane gateway list` shows what each serves")


# ---- registration -------------------------------------------------------------------------


def register(group: click.Group) -> None:
    """Add these commands to the ``streamplane`` command group."""
    for command in (cluster, api_key, topic, kafka_config, gateway):
        group.add_command(command)
