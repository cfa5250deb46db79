"""``python -m streamplane.mothership.gateway_process``: the gateway of one shared physical
cluster, as the mothership runs it (``gateways.py``): API keys come from the mothership's
store, so keys created or revoked through the API take effect without a restart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from streamplane.gateway.serve import gateway_options, run_gateway
from streamplane.mothership.gateway_keys import StoreKeyVerifier
from streamplane.mothership.store import Store


@click.command()
@click.option("--data-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="the mothership's data directory (its store and secret key)")
@click.option("--store-url", envvar="STREAMPLANE_STORE_URL",
              help="the store's database URL, if not SQLite in --data-dir (or set "
                   "STREAMPLANE_STORE_URL, which keeps its password off the command line)")
@click.option("--physical-cluster", required=True, help="the shared physical cluster this gateway fronts")
@gateway_options
def main(data_dir: Path, store_url: str | None, physical_cluster: str, **options: Any) -> None:
    """Run the gateway of a shared physical cluster with the API keys in the mothership's store."""
    run_gateway(StoreKeyVerifier(Store.in_data_dir(data_dir, url=store_url), physical_cluster), **options)


if __name__ == "__main__":
    main()
