"""Running a gateway as a process: its command-line options and its serving loop.

Two commands use this: ``python -m streamplane.gateway`` (keys from a JSON file) and the
mothership's ``python -m streamplane.mothership.gateway_process`` (keys from its store);
they differ only in where API keys come from. The ports chosen at run time are written to
``--state-file`` (and rewritten as brokers come and go), with the certificate in service
when the gateway serves TLS (``--tls-cert``/``--tls-key``). The certificate files are
watched; SIGHUP loads them again at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from streamplane.credentials.tls import TlsError, TlsSettings
from streamplane.gateway.auth import KeyVerifier
from streamplane.gateway.config import GatewayConfig
from streamplane.gateway.gateway import Gateway

log = logging.getLogger("streamplane.gateway")
STATE_INTERVAL_S = 2.0
F = TypeVar("F", bound=Callable[..., Any])


def _write_state(gateway: Gateway, path: Path) -> None:
    state: dict[str, object] = {"pid": os.getpid(), "bootstrap": gateway.bootstrap,
                                "brokers": {str(k): v for k, v in gateway.broker_ports().items()},
                                "security_protocol": "SASL_SSL" if gateway.tls else "SASL_PLAINTEXT"}
    if gateway.tls is not None and gateway.tls.info is not None:
        info = gateway.tls.info
        state["certificate"] = {"serial": f"{info.serial:x}", "subject": info.subject,
                                "issuer": info.issuer, "not_after": info.not_after.isoformat(),
                                "loads": gateway.tls.loads}
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
        reloads: set[asyncio.Task[None]] = set()
        if gateway.tls is not None:
            def reload() -> None:
                task = asyncio.create_task(_reload(gateway))
                reloads.add(task)
                task.add_done_callback(reloads.discard)

            loop.add_signal_handler(signal.SIGHUP, reload)
        written: tuple[object, ...] | None = None
        while not stop.is_set():
            if state_file is not None:
                now = (gateway.bootstrap, gateway.broker_ports(),
                       gateway.tls.loads if gateway.tls else 0)
                if now != written:
                    _write_state(gateway, state_file)
                    written = now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), STATE_INTERVAL_S)
    if state_file is not None:
        state_file.unlink(missing_ok=True)


async def _reload(gateway: Gateway) -> None:
    try:
        info = await gateway.reload_tls()
    except TlsError as exc:
        log.error("TLS reload asked for (SIGHUP) failed; the certificate in service stays: %s", exc)
    else:
        log.info("TLS reload asked for (SIGHUP): new connections get the certificate with %s", info)


def _tls(cert: Path | None, key: Path | None, client_ca: Path | None) -> TlsSettings | None:
    if cert is None and key is None:
        if client_ca is not None:
            raise click.UsageError("--tls-client-ca needs --tls-cert and --tls-key")
        return None
    if cert is None or key is None:
        raise click.UsageError("give both --tls-cert and --tls-key, or neither")
    return TlsSettings(cert_file=cert, key_file=key, ca_file=client_ca)




def gateway_options(command: F) -> F:
    """The options every gateway command has: upstream, listeners, state file, TLS, logging."""
    for option in reversed([
        click.option("--upstream", "upstream", required=True,
                      help="the shared cluster's SASL/SCRAM client listener, host:port[,host:port...]"),
        click.option("--listen-host", default="127.0.0.1", show_default=True),
        click.option("--advertised-host", help="the host clients connect to (default: --listen-host)"),
        click.option("--bootstrap-port", type=int, default=0, show_default=True, help="0: any free port"),
        click.option("--broker-port-base", type=int, help="broker N listens on this + N (default: any)"),
        click.option("--state-file", type=click.Path(dir_okay=False, path_type=Path),
                      help="where to record the bootstrap and broker ports"),
        click.option("--tls-cert", type=click.Path(dir_okay=False, path_type=Path),
                      help="serve TLS (clients use SASL_SSL) with this PEM certificate (chain)"),
        click.option("--tls-key", type=click.Path(dir_okay=False, path_type=Path),
                      help="the certificate's PEM private key"),
        click.option("--tls-client-ca", type=click.Path(dir_okay=False, path_type=Path),
                      help="require client certificates signed by these CAs (mutual TLS)"),
        click.option("--log-level", default="INFO", show_default=True),
    ]):
        command = option(command)
    return command


def run_gateway(verifier: KeyVerifier, upstream: str, listen_host: str, advertised_host: str | None,
                bootstrap_port: int, broker_port_base: int | None, state_file: Path | None,
                tls_cert: Path | None, tls_key: Path | None, tls_client_ca: Path | None,
                log_level: str) -> None:
    """Serve until SIGTERM or SIGINT, with the options of ``gateway_options``."""
    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    config = GatewayConfig(
        upstream_bootstrap=tuple(a for a in upstream.split(",") if a.strip()),
        listen_host=listen_host, advertised_host=advertised_host, bootstrap_port=bootstrap_port,
        broker_port_base=broker_port_base, tls=_tls(tls_cert, tls_key, tls_client_ca))
    try:
        asyncio.run(_serve(config, verifier, state_file))
    except TlsError as exc:
        raise click.ClickException(f"cannot serve TLS: {exc}") from None
