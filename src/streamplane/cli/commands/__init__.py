"""``streamplane cluster | api-key | topic | kafka-config | gateway``: the mothership's REST
API from a shell.

Thin: find the API, call it, print. Every error a user can cause is one line on stderr,
``error: <what was wrong and what to do>``, and a non-zero exit. ``base.py`` holds what the
commands share; one module per command group.
"""

from __future__ import annotations

import click

from streamplane.cli.commands.api_keys import api_key, kafka_config
from streamplane.cli.commands.clusters import cluster
from streamplane.cli.commands.gateways import gateway
from streamplane.cli.commands.topics import topic


def register(group: click.Group) -> None:
    """Add these commands to the ``streamplane`` command group."""
    for command in (cluster, api_key, topic, kafka_config, gateway):
        group.add_command(command)
