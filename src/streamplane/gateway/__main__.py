"""``python -m streamplane.gateway``: run one gateway in front of one shared physical cluster.

Keys come from the mothership's store (``--data-dir``/``--store-url`` with
``--physical-cluster``) or, for development, a JSON file (``--keys``). The ports chosen at
run time are written to ``--state-file`` (and rewritten as brokers come and go).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from pathlib import Path

import click

from streamplane.gateway.auth import KeyVerifier
from streamplane.gateway.config import GatewayConfig
from streamplane.gateway.gateway import Gateway

log = logging.getLogger("streamplane.gateway")
STATE_INTERVAL_S = 2.0


def _verifier(keys: Path | None, data_dir: Path | None, store_url: str | None,
              physical_cluster: str | None) -> KeyVerifier:
    from streamplane.gateway.verifiers import FileKeyVerifier, StoreKeyVerifier

    if keys is not None:
        return FileKeyVerifier(keys)
    if data_dir is None or physical_cluster is None:
        raise click.UsageError("give --keys FILE, or --data-dir (and --store-url) with "
                               "--physical-cluster to read API keys from the mothership's store")
    from streamplane.mothership.store import Store

    return StoreKeyVerifier(Store.in_data_dir(data_dir, url=store_url), physical_cluster)


def _write_state(gateway: Gateway, path: Path) -> None:
    state: dict[str, object] = {"pid": os.getpid(), "bootstrap": gateway.bootstrap,
                                "brokers": {str(k): v for k, v in gateway.broker_ports().items()}}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(path)


async def _serve(config: GatewayConfig, verifier: KeyVerifier, state_file: Path | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Gateway(config, verifier) as gateway:
        click.echo(f"gateway listening at {gateway.bootstrap}", err=True)
        written: tuple[str, dict[int, int]] | None = None
        while not stop.is_set():
            if state_file is not None:
                ports = (gateway.bootstrap, gateway.broker_ports())
                if ports != written:
                    _write_state(gateway, state_file)
                    written = ports
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), STATE_INTERVAL_S)
    if state_file is not None:
        state_file.unlink(missing_ok=True)


@click.command()
@click.option("--upstream", "upstream", required=True,
              help="the shared cluster's SASL/SCRAM client listener, host:port[,host:port...]")
@click.option("--keys", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="a JSON file of API keys (development)")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="the mothership's data directory (its store and secret key)")
@click.option("--store-url", help="the store's database URL, if not SQLite in --data-dir")
@click.option("--physical-cluster", help="the shared physical cluster this gateway fronts")
@click.option("--listen-host", default="127.0.0.1", show_default=True)
@click.option("--advertised-host", help="the host clients connect to (default: --listen-host)")
@click.option("--bootstrap-port", type=int, default=0, show_default=True, help="0: any free port")
@click.option("--broker-port-base", type=int, help="broker N listens on this + N (default: any)")
@click.option("--state-file", type=click.Path(dir_okay=False, path_type=Path),
              help="where to record the bootstrap and broker ports")
@click.option("--log-level", default="INFO", show_default=True)
def main(upstream: str, keys: Path | None, data_dir: Path | None, store_url: str | None,
         physical_cluster: str | None, listen_host: str, advertised_host: str | None,
         bootstrap_port: int, broker_port_base: int | None, state_file: Path | None,
         log_level: str) -> None:
    """Run a Kafka-protocol gateway: API-key logins, one private-looking cluster per tenant."""
    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    config = GatewayConfig(
        upstream_bootstrap=tuple(a for a in upstream.split(",") if a.strip()),
        listen_host=listen_host, advertised_host=advertised_host, bootstrap_port=bootstrap_port,
        broker_port_base=broker_port_base)
    verifier = _verifier(keys, data_dir, store_url, physical_cluster)
    asyncio.run(_serve(config, verifier, state_file))


if __name__ == "__main__":
    main()
