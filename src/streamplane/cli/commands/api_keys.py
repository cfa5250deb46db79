"""``streamplane api-key ...`` and ``streamplane kafka-config``: API keys and the client
settings that use them."""

from __future__ import annotations

import uuid

import click

from streamplane.cli.api_client import ApiClient
from streamplane.cli.commands.base import (
    CLUSTER,
    OUTPUT,
    ApiCommand,
    ApiGroup,
    CliError,
    dump,
    print_json,
    table,
    when,
    with_api,
)
from streamplane.gateway.sasl import SUPPORTED_MECHANISMS

SECURITY_PROTOCOL = "SASL_PLAINTEXT"
SASL_MECHANISM = "SCRAM-SHA-512"
JAAS_LOGIN_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"


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
        print_json(dump(issued))
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
        print_json([dump(k) for k in keys])
        return
    if not keys:
        click.echo(f"no API keys; create one with `streamplane api-key create --cluster {cluster_ref}`")
        return
    table(["KEY", "CREATED", "DESCRIPTION"], [[k.key, when(k.created_at), k.description] for k in keys])


@api_key.command("revoke")
@click.argument("key")
@with_api
def api_key_revoke(api: ApiClient, key: str) -> None:
    """Revoke KEY: clients using it can no longer connect."""
    api.revoke_api_key(key)
    click.echo(f"revoked API key {key}")


# ---- client configuration -----------------------------------------------------------------


@click.command("kafka-config", cls=ApiCommand)
@CLUSTER
@click.option("--api-key", "key", required=True, metavar="KEY", help="An API key of the cluster.")
@click.option("--secret", required=True, envvar="STREAMPLANE_API_SECRET", metavar="SECRET",
              help="The key's secret (or set STREAMPLANE_API_SECRET, which keeps it out of shell history).")
@click.option("--format", "fmt", type=click.Choice(["java", "librdkafka", "properties", "librdkafka-json"]),
              default="java", show_default=True,
              help="java (or properties): a client properties file, with the Java-only sasl.jaas.config "
                   "line; librdkafka: a properties file confluent-kafka and kcat (-F) read as is, without "
                   "that line, which librdkafka rejects; librdkafka-json: the same as a JSON dict.")
@with_api
def kafka_config(api: ApiClient, cluster_ref: str, key: str, secret: str, fmt: str) -> None:
    """Print the settings a Kafka client needs to reach the cluster with an API key.

    The default java format is ready for Java clients (--producer.config,
    --command-config). librdkafka-based clients (confluent-kafka, kcat, ...) do not
    know sasl.jaas.config: use --format librdkafka (a properties file) or
    librdkafka-json (a JSON dict) without it.
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
        print_json(settings)
        return
    if fmt == "librdkafka":
        for name, value in settings.items():
            click.echo(f"{name}={value}")
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
