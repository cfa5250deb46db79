"""``streamplane topic ...``: a cluster's topics."""

from __future__ import annotations

import uuid

import click

from streamplane.cli.api_client import ApiClient
from streamplane.cli.commands.base import (
    CLUSTER,
    OUTPUT,
    ApiGroup,
    CliError,
    dump,
    print_json,
    print_topic,
    table,
    with_api,
)
from streamplane.models import api as s


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
        print_json([dump(t) for t in topics])
        return
    if not topics:
        click.echo(f"no topics; create one with `streamplane topic create NAME --cluster {cluster_ref}`")
        return
    table(["NAME", "PARTITIONS", "REPLICATION"],
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
        print_json(dump(t))
    else:
        print_topic(t)
