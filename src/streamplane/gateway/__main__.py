"""``python -m streamplane.gateway``: one gateway in front of one cluster, its API keys in a
JSON file (``--keys``), for development and tests. The gateways the mothership runs read
their keys from its store instead (``python -m streamplane.mothership.gateway_process``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from streamplane.gateway.serve import gateway_options, run_gateway
from streamplane.gateway.verifiers import FileKeyVerifier


@click.command()
@click.option("--keys", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="a JSON file of API keys, read again whenever it changes")
@gateway_options
def main(keys: Path, **options: Any) -> None:
    """Run a Kafka-protocol gateway: API-key logins, one private-looking cluster per tenant."""
    run_gateway(FileKeyVerifier(keys), **options)


if __name__ == "__main__":
    main()
