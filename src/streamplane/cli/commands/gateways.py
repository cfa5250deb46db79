"""``streamplane gateway ...``: the gateways in front of shared clusters."""

from __future__ import annotations

import click

from streamplane.cli.api_client import ApiClient
from streamplane.cli.commands.base import OUTPUT, ApiGroup, dump, print_json, with_api


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
        print_json([dump(g) for g in gateways])
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
