"""``streamplane``: the command line. Thin: parse, call, print."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from streamplane.channel import ChannelError
from streamplane.channel.link import ChannelLink
from streamplane.channel.source import (
    DesiredStateSource,
    DirectorySource,
    FanoutSink,
    FileStatusSink,
    MergedSource,
    StatusSink,
    parse_psc,
)
from streamplane.cli.commands import register
from streamplane.cli.fleet import ZONE_NAMES, FleetDeployment
from streamplane.cli.local import SYSTEM_CLUSTER_ID, LocalDeployment, LocalError
from streamplane.credentials.tls import TlsError, TlsSettings, check_certificate
from streamplane.engine.distribution import EngineError, EngineResolver
from streamplane.models.psc import check_address
from streamplane.models.status import ClusterStatus
from streamplane.mothership.server import GatewayTlsRecordError, MothershipLayout, MothershipSettings
from streamplane.mothership.server import run as run_mothership
from streamplane.paths import default_data_dir
from streamplane.proc.daemon import AlreadyRunningError
from streamplane.satellite.agent import Satellite, SatelliteBusyError, exclusive
from streamplane.satellite.layout import SatelliteLayout
from streamplane.settings import BROKER_HEAP_MB, REPLICATION_THROTTLE_BYTES_PER_S
from streamplane.versions import DEFAULT_KAFKA_VERSION, supported_versions

DATA_DIR = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Streamplane's data directory (default: ~/.local/share/streamplane).")
OUTPUT = click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text",
                      help="Output format.")


def _data_dir(value: Path | None) -> Path:
    return (value or default_data_dir()).expanduser().absolute()


def fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Streamplane: a self-hosted managed Apache Kafka service."""


# ---- embedded default -------------------------------------------------------------------


@cli.command()
@DATA_DIR
@click.option("--detach", is_flag=True, help="Return once healthy, leaving the daemons running.")
@click.option("--timeout", type=float, default=240.0, show_default=True,
              help="Seconds to wait for the system cluster to become healthy.")
@click.option("--db", "db_url", default=None, envvar="STREAMPLANE_DB_URL",
              help="State store URL (default: SQLite in the data dir), e.g. postgresql+psycopg://...")
@click.option("--zones", type=click.IntRange(1, len(ZONE_NAMES)), default=None,
              help="Run a fleet: one satellite per zone, each a host of its own (a network "
                   "namespace with its own address when run as root, else a loopback address), "
                   "and the system cluster over three zones. Kept for the data dir once given.")
@click.option("--spares", type=click.IntRange(0, 3), default=0, show_default=True,
              help="With --zones: more satellites per zone, for replacing lost hosts.")
def up(data_dir: Path | None, detach: bool, timeout: float, db_url: str | None,
       zones: int | None, spares: int) -> None:
    """Start a local satellite, the system cluster and the mothership; say what runs where."""
    root = _data_dir(data_dir)
    try:
        resolver = EngineResolver()
        if resolver.installed(DEFAULT_KAFKA_VERSION) is None:
            click.echo(f"installing Apache Kafka {DEFAULT_KAFKA_VERSION} from Maven Central...",
                       err=True)
        resolver.resolve(DEFAULT_KAFKA_VERSION)
    except EngineError as exc:
        fail(str(exc))
        return
    if zones is not None or FleetDeployment.exists(root):
        _up_fleet(FleetDeployment(root, zones or 3, 1 + spares), detach, timeout, db_url)
        return
    local = LocalDeployment(root, channel_file=MothershipLayout(root).channel_file)
    try:
        psc = local.ensure_system_cluster()
        sat_pid = local.start_satellite()
        status = local.wait_healthy(SYSTEM_CLUSTER_ID, psc.generation, timeout)
        local.ensure_channel()
        api_url = local.start_mothership(db_url)
    except (EngineError, LocalError, ChannelError) as exc:
        fail(str(exc))
        return
    _print_summary(local, sat_pid, status, api_url)
    if not detach:
        _run_until_stopped(lambda: local.satellite_pid() is not None, local.down)


def _run_until_stopped(running: Callable[[], bool], down: Callable[[], list[str]]) -> None:
    """Wait for Ctrl-C or SIGTERM (or for ``running`` to turn false), then stop everything."""
    click.echo("running; press Ctrl-C to stop everything", err=True)
    stop = {"now": False}

    def _stop(*_: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    while not stop["now"] and running():
        time.sleep(0.5)
    for line in down():
        click.echo(line, err=True)


def _up_fleet(deployment: FleetDeployment, detach: bool, timeout: float, db_url: str | None) -> None:
    try:
        fleet, status, api_url = deployment.start(timeout, db_url)
    except (LocalError, ChannelError) as exc:
        fail(str(exc))
        return
    click.echo(f"Streamplane is running as a fleet of {len(fleet.hosts)} satellites "
               f"(data dir {deployment.data_dir})")
    click.echo(f"  mothership API     {api_url} (pid {deployment.mothership.pid()})")
    click.echo(f"  admin token        {deployment.mothership.token_file}")
    for sat in deployment.satellites():
        where = f"network namespace {sat['netns']}" if sat["netns"] else "loopback address"
        click.echo(f"  satellite {sat['name']:<8} {sat['zone']}, {sat['host']} ({where}), pid {sat['pid']}")
    if fleet.no_split_reason:
        click.echo(f"  note               {fleet.no_split_reason}")
    click.echo(f"  system cluster     Kafka {status.kafka_version}, {status.status}, "
               f"bootstrap {status.bootstrap}")
    click.echo(f"  stop with          streamplane down --data-dir {deployment.data_dir}")
    if not detach:
        _run_until_stopped(lambda: True, deployment.down)


def _print_summary(local: LocalDeployment, sat_pid: int, status: ClusterStatus, api_url: str) -> None:
    click.echo(f"Streamplane is running (data dir {local.data_dir})")
    click.echo(f"  mothership API     {api_url} (pid {local.mothership_pid()}, "
               f"OpenAPI at {api_url}/openapi.json)")
    click.echo(f"  admin token        {local.mothership.token_file}")
    click.echo(f"  satellite          pid {sat_pid}, log {local.layout.log_file}")
    click.echo(f"  system cluster     Kafka {status.kafka_version}, {status.status}, "
               f"bootstrap {status.bootstrap} (SASL_PLAINTEXT, SCRAM-SHA-512)")
    for b in status.brokers:
        click.echo(f"    broker {b.id:<4}      {b.host}:{b.port} pid {b.pid}, "
                   f"metrics http://{b.host}:{b.metrics_port}/metrics")
    click.echo(f"  credentials        {local.layout.desired_dir / (SYSTEM_CLUSTER_ID + '.json')}")
    click.echo(f"  stop with          streamplane down --data-dir {local.data_dir}")


@cli.command()
@DATA_DIR
def down(data_dir: Path | None) -> None:
    """Stop everything ``up`` started; the data stays for the next ``up``."""
    root = _data_dir(data_dir)
    said = FleetDeployment(root).down() if FleetDeployment.exists(root) else LocalDeployment(root).down()
    for line in said or ["nothing was running"]:
        click.echo(line)


@cli.command()
@DATA_DIR
@OUTPUT
def status(data_dir: Path | None, output: str) -> None:
    """Show the satellites and every physical cluster they run."""
    root = _data_dir(data_dir)
    if FleetDeployment.exists(root):
        _fleet_status(FleetDeployment(root), output)
        return
    local = LocalDeployment(_data_dir(data_dir))
    pid = local.satellite_pid()
    beat = local.heartbeat() or {}
    clusters = local.statuses()
    if output == "json":
        doc = {
            "data_dir": str(local.data_dir),
            "satellite": {"name": beat.get("name"), "running": pid is not None, "pid": pid,
                          "source_errors": beat.get("source_errors", {})},
            "satellites": [{"name": beat.get("name") or local.satellite_name, "zone": local.zone,
                            "host": local.host, "pid": pid}],
            "clusters": [c.model_dump(mode="json") for c in clusters],
        }
        click.echo(json.dumps(doc, indent=2))
        return
    click.echo(f"satellite: {'running, pid ' + str(pid) if pid else 'not running'}")
    _print_clusters(clusters)


def _fleet_status(deployment: FleetDeployment, output: str) -> None:
    sats = deployment.satellites()
    clusters = deployment.statuses()
    if output == "json":
        click.echo(json.dumps({"data_dir": str(deployment.data_dir), "satellites": sats,
                               "clusters": [c.model_dump(mode="json") for c in clusters]}, indent=2))
        return
    for sat in sats:
        state = f"running, pid {sat['pid']}" if sat["pid"] else "not running"
        click.echo(f"satellite {sat['name']} ({sat['zone']}, {sat['host']}): {state}")
    _print_clusters(clusters)


def _print_clusters(clusters: list[ClusterStatus]) -> None:
    if not clusters:
        click.echo("no physical clusters")
    for c in clusters:
        click.echo(f"cluster {c.id}: {c.status} Kafka {c.kafka_version} generation "
                   f"{c.observed_generation}/{c.generation} bootstrap {c.bootstrap}")
        if c.last_error:
            click.echo(f"  last error: {c.last_error}")
        for n in c.brokers + c.controllers:
            on = f" on {n.satellite}" if n.satellite else ""
            click.echo(f"  node {n.id} [{','.join(n.roles)}] {n.state} {n.host}:"
                       f"{n.port or n.controller_port}{on} pid {n.pid} restarts {n.restarts}")


# ---- mothership ---------------------------------------------------------------------------


@cli.group()
def mothership() -> None:
    """The control plane."""


@mothership.command("run")
@DATA_DIR
@click.option("--db", "db_url", default=None, envvar="STREAMPLANE_DB_URL",
              help="State store URL (default: SQLite in the data dir).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=0, help="API port (default: any free port).")
@click.option("--broker-heap-mb", type=int, default=BROKER_HEAP_MB, show_default=True,
              envvar="STREAMPLANE_BROKER_HEAP_MB",
              help="JVM heap of each broker it provisions.")
@click.option("--replication-throttle", type=click.IntRange(min=1),
              default=REPLICATION_THROTTLE_BYTES_PER_S, show_default=True,
              envvar="STREAMPLANE_REPLICATION_THROTTLE", metavar="BYTES_PER_S",
              help="Replication throttle per broker while the balancer moves partitions.")
@click.option("--gateway-tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              envvar="STREAMPLANE_GATEWAY_TLS_CERT",
              help="Gateways serve TLS (tenants use SASL_SSL) with this PEM certificate (chain); "
                   "replacing the file rotates it without a restart.")
@click.option("--gateway-tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              envvar="STREAMPLANE_GATEWAY_TLS_KEY", help="The gateway certificate's PEM private key.")
@click.option("--gateway-tls-client-ca", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              envvar="STREAMPLANE_GATEWAY_TLS_CLIENT_CA",
              help="Gateways require client certificates signed by these CAs (mutual TLS).")
@click.option("--gateway-plain", is_flag=True,
              help="Turn the gateways' TLS off (it stays on across restarts once given).")
def mothership_run(data_dir: Path | None, db_url: str | None, host: str, port: int,
                   broker_heap_mb: int, replication_throttle: int, gateway_tls_cert: Path | None,
                   gateway_tls_key: Path | None, gateway_tls_client_ca: Path | None,
                   gateway_plain: bool) -> None:
    """Run the mothership (API, reconciler and balancer) in the foreground.

    Gateway TLS, once given, is remembered in the data dir: a restart without the flags
    keeps serving TLS from the same files (tenants' SASL_SSL clients keep working);
    --gateway-plain turns it off."""
    layout = MothershipLayout(_data_dir(data_dir))
    gateway_tls = _gateway_tls(layout, gateway_tls_cert, gateway_tls_key, gateway_tls_client_ca,
                               gateway_plain)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("streamplane.rdkafka").setLevel(logging.CRITICAL)
    logging.getLogger("kafka").setLevel(logging.WARNING)  # kafka-python narrates every connection
    if gateway_tls is not None and gateway_tls_cert is None:
        logging.getLogger(__name__).info(
            "gateways keep serving TLS with %s, as recorded in %s (--gateway-plain turns it off)",
            gateway_tls.cert_file, layout.gateway_tls_file)
    settings = MothershipSettings(layout.data_dir, db_url, host, port, broker_heap_mb,
                                  replication_throttle_bytes_per_s=replication_throttle,
                                  gateway_tls=gateway_tls)
    try:
        run_mothership(settings)
    except (AlreadyRunningError, ChannelError) as exc:
        fail(str(exc))


def _gateway_tls(layout: MothershipLayout, cert: Path | None, key: Path | None, client_ca: Path | None,
                 plain: bool) -> TlsSettings | None:
    """The gateways' TLS: as given, as recorded by an earlier run, or none; checked."""
    if (cert is None) != (key is None):
        raise click.UsageError("give both --gateway-tls-cert and --gateway-tls-key, or neither")
    if client_ca is not None and cert is None:
        raise click.UsageError("--gateway-tls-client-ca needs --gateway-tls-cert and --gateway-tls-key")
    if plain and cert is not None:
        raise click.UsageError("--gateway-plain turns gateway TLS off: give it without --gateway-tls-*")
    if cert is not None and key is not None:
        tls = TlsSettings(cert_file=cert.resolve(), key_file=key.resolve(),
                          ca_file=client_ca.resolve() if client_ca else None)
        _check_gateway_tls(tls, "the gateway TLS files do not work")
        return tls
    if plain:
        return None
    try:
        recorded = layout.recorded_gateway_tls()
    except GatewayTlsRecordError as exc:
        fail(f"{exc}; give --gateway-tls-cert/--gateway-tls-key, or --gateway-plain")
    if recorded is not None:
        _check_gateway_tls(recorded, (
            f"the gateways served TLS with {recorded.cert_file} (recorded in "
            f"{layout.gateway_tls_file}), and those files no longer work; give working "
            "--gateway-tls-cert/--gateway-tls-key files, or --gateway-plain to turn TLS off"))
    return recorded


def _check_gateway_tls(tls: TlsSettings, problem: str) -> None:
    try:
        check_certificate(tls)
    except TlsError as exc:
        fail(f"{problem}: {exc}")


# ---- satellite ----------------------------------------------------------------------------


def _address(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return check_address(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@cli.group()
def satellite() -> None:
    """Run a satellite, or hand it physical cluster specs."""


@satellite.command("run")
@DATA_DIR
@click.option("--name", default="local", show_default=True, help="This satellite's name.")
@click.option("--zone", default="zone-a", show_default=True, help="The zone this host is in.")
@click.option("--host", "host", default="127.0.0.1", show_default=True, callback=_address,
              help="This host's IP address: its Kafka nodes bind and advertise it.")
@click.option("--max-brokers", type=int, default=12, show_default=True,
              help="How many Kafka processes this host may run.")
@click.option("--channel", "channel_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Control channel config (JSON); connects once the file exists.")
@click.option("-v", "--verbose", is_flag=True)
def satellite_run(data_dir: Path | None, name: str, zone: str, host: str, max_brokers: int,
                  channel_file: Path | None, verbose: bool) -> None:
    """Run the satellite agent in the foreground until SIGTERM/SIGINT."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    if not verbose:
        logging.getLogger("streamplane.rdkafka").setLevel(logging.CRITICAL)
    layout = SatelliteLayout(_data_dir(data_dir))
    try:
        with exclusive(layout):
            asyncio.run(_run_satellite(name, zone, host, max_brokers, layout, channel_file))
    except SatelliteBusyError as exc:
        fail(str(exc))


async def _run_satellite(name: str, zone: str, host: str, max_brokers: int,
                         layout: SatelliteLayout, channel_file: Path | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    files: DesiredStateSource = DirectorySource(layout.desired_dir)
    local_status: StatusSink = FileStatusSink(layout.status_dir)
    if channel_file is None:
        agent = Satellite(name, layout, files, local_status, zone=zone, host=host,
                          max_brokers=max_brokers)
        await agent.run(stop)
        return
    link = ChannelLink(channel_file.absolute(), name)
    agent = Satellite(name, layout, MergedSource(files, link), FanoutSink(local_status, link),
                      zone=zone, host=host, max_brokers=max_brokers, announce=link.announce)
    try:
        await agent.run(stop)
    finally:
        await link.close()


@satellite.command("apply")
@DATA_DIR
@click.argument("spec_file", type=click.File("r"))
def satellite_apply(data_dir: Path | None, spec_file: Any) -> None:
    """Validate a PSC (JSON) and hand it to the satellite of DATA_DIR."""
    try:
        raw = json.load(spec_file)
    except ValueError as exc:
        fail(f"{spec_file.name} is not valid JSON: {exc}")
    try:
        psc = parse_psc(raw)
    except ValueError as exc:
        fail(f"invalid physical cluster spec: {exc}")
        return
    path = DirectorySource(SatelliteLayout(_data_dir(data_dir)).desired_dir).submit(psc)
    click.echo(f"accepted {psc.id} generation {psc.generation} ({path})")


@satellite.command("remove")
@DATA_DIR
@click.argument("cluster_id")
def satellite_remove(data_dir: Path | None, cluster_id: str) -> None:
    """Withdraw a PSC: the satellite stops the cluster and deletes its data."""
    source = DirectorySource(SatelliteLayout(_data_dir(data_dir)).desired_dir)
    if not source.withdraw(cluster_id):
        fail(f"no physical cluster {cluster_id!r} is desired on this satellite")
    click.echo(f"withdrew {cluster_id}; the satellite stops it and deletes its data")


# ---- engine -------------------------------------------------------------------------------


@cli.group()
def engine() -> None:
    """The Apache Kafka versions Streamplane runs."""


@engine.command("install")
@click.option("--version", "versions", multiple=True,
              help=f"Kafka version(s) to install (default {DEFAULT_KAFKA_VERSION}).")
@click.option("--all", "install_all", is_flag=True, help="Install every supported version.")
def engine_install(versions: tuple[str, ...], install_all: bool) -> None:
    """Resolve Kafka and its runtime from Maven Central into the local cache."""
    wanted = supported_versions() if install_all else list(versions or [DEFAULT_KAFKA_VERSION])
    resolver = EngineResolver()
    for v in wanted:
        try:
            dist = resolver.resolve(v)
        except (EngineError, ValueError) as exc:
            fail(str(exc))
            return
        click.echo(f"Kafka {v}: {dist.libs_dir} ({dist.source})")


@engine.command("list")
def engine_list() -> None:
    """Supported versions and whether each is installed."""
    resolver = EngineResolver()
    for v in supported_versions():
        dist = resolver.installed(v)
        mark = " (default)" if v == DEFAULT_KAFKA_VERSION else ""
        click.echo(f"{v}{mark}: {dist.libs_dir if dist else 'not installed'}")


register(cli)


def main() -> None:
    cli()
