"""What every API command shares: finding the API, one-line errors, common options and
output helpers."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import click
from pydantic import BaseModel

from streamplane.cli.api_client import ApiClient, ApiClientError
from streamplane.models import api as s
from streamplane.mothership.server import MothershipLayout
from streamplane.paths import default_data_dir

DEFAULT_WAIT_TIMEOUT_S = 900.0
POLL_INTERVAL_S = 1.0


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


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


def print_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2))


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    rows = list(rows)
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    for row in (headers, *rows):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def when(moment: datetime | None) -> str:
    return moment.isoformat(sep=" ", timespec="seconds") if moment else "-"


def shape(c: s.ClusterOut) -> str:
    size = f", {c.cku} CKU" if c.cku else ""
    return f"{c.type}{size}, {c.availability} ({c.zones} zone{'s' if c.zones != 1 else ''})"


def print_cluster(c: s.ClusterOut) -> None:
    reason = f" ({c.status_reason})" if c.status_reason else ""
    click.echo(f"cluster {c.name} ({c.id})")
    click.echo(f"  type        {shape(c)}")
    click.echo(f"  status      {c.status}{reason}")
    click.echo(f"  kafka       {c.kafka_version}")
    click.echo(f"  bootstrap   {c.bootstrap or '(assigned once it runs)'}")
    click.echo(f"  generation  {c.generation}")
    click.echo(f"  created     {when(c.created_at)}")


def print_topic(t: s.TopicOut) -> None:
    click.echo(f"topic {t.name}")
    click.echo(f"  partitions          {t.partitions}")
    click.echo(f"  replication factor  {t.replication_factor}")
    if t.configs:
        click.echo("  configs")
        for key, value in sorted(t.configs.items()):
            click.echo(f"    {key}={value}")
    if t.partition_details:
        table(["  PARTITION", "LEADER", "REPLICAS", "ISR"],
               [[f"  {p.get('partition')}", str(p.get("leader")), ids(p.get("replicas")), ids(p.get("isr"))]
                for p in t.partition_details])


def ids(values: Any) -> str:
    return ",".join(str(v) for v in values or [])


def progress(c: s.ClusterOut, op: s.OperationOut, said: str, *, done: bool) -> str:
    """Print a progress line on stderr when it differs from the last one; return it."""
    why = c.status_reason or op.error or ""
    # the cluster may reach its goal a moment before its operation is marked finished
    percent = 100.0 if done else op.progress
    line = f"{c.name}: {c.status}, {percent:.0f}%" + (f" ({why})" if why else "")
    if line != said:
        click.echo(line, err=True)
    return line


def pause_until(deadline: float, on_timeout: str) -> None:
    left = deadline - time.monotonic()
    if left <= 0:
        raise CliError(on_timeout)
    time.sleep(min(POLL_INTERVAL_S, left))
