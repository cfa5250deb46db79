"""``python -m streamplane.cli.executor``: one balancer execution in a process of its own.

Executes a plan on a Kafka cluster, or finishes (resumes, cancels, rolls back) the
execution recorded in a state file; SIGTERM or SIGINT cancels the moves in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from streamplane.kafka.settings import ClientSettings
from streamplane.loops.balancer.executor import Executor
from streamplane.loops.balancer.executor_state import (
    ExecutionState,
    ExecutorConfig,
    ExecutorError,
    OnRestart,
    Phase,
    load_state,
)
from streamplane.loops.balancer.plan import Plan
from streamplane.loops.balancer.reassign import ReassignmentAdmin

#: the environment variable the runner reads the cluster password from (never argv)
PASSWORD_ENV = "STREAMPLANE_KAFKA_PASSWORD"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m streamplane.cli.executor",
        description="Execute a balancer plan on a Kafka cluster, or finish the execution recorded "
                    f"in a state file. The password is read from ${PASSWORD_ENV}.")
    p.add_argument("--state", type=Path, required=True, help="the execution's state file")
    p.add_argument("--plan", type=Path, help="a Plan as JSON; needed for a new execution")
    p.add_argument("--bootstrap", required=True, help="the cluster's client listener, host:port[,...]")
    p.add_argument("--username", required=True)
    p.add_argument("--mechanism", default="SCRAM-SHA-512")
    p.add_argument("--on-restart", choices=[o.value for o in OnRestart], default=OnRestart.RESUME.value,
                   help="what to do with an unfinished execution in the state file")
    p.add_argument("--throttle", type=int, help="replication throttle per broker, bytes/s")
    p.add_argument("--no-throttle", action="store_true")
    p.add_argument("--max-partitions", type=int, help="partitions in flight at once")
    p.add_argument("--max-bytes", type=int, help="bytes to copy in flight at once")
    p.add_argument("--poll", type=float, help="seconds between looks at the cluster")
    return p


def _config_from(args: argparse.Namespace, base: ExecutorConfig | None) -> ExecutorConfig | None:
    changes: dict[str, Any] = {}
    if args.throttle is not None:
        changes["throttle_bytes_per_s"] = args.throttle
    if args.no_throttle:
        changes["throttle_bytes_per_s"] = None
    if args.max_partitions is not None:
        changes["max_partitions_in_flight"] = args.max_partitions
    if args.max_bytes is not None:
        changes["max_bytes_in_flight"] = args.max_bytes
    if args.poll is not None:
        changes["poll_interval_s"] = args.poll
    if not changes:
        return base
    return ExecutorConfig.model_validate({**(base or ExecutorConfig()).model_dump(), **changes})


async def _run_cli(args: argparse.Namespace, password: str) -> ExecutionState:
    plan = Plan.model_validate_json(args.plan.read_text()) if args.plan else None
    recorded = await asyncio.to_thread(load_state, args.state)
    config = _config_from(args, recorded.config if recorded is not None else None)
    settings = ClientSettings(args.bootstrap, args.username, password, mechanism=args.mechanism)
    admin = ReassignmentAdmin(settings, timeout=(config or ExecutorConfig()).request_timeout_s)
    try:
        executor = Executor(admin, args.state, config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, executor.cancel)
        return await executor.run(plan, OnRestart(args.on_restart))
    finally:
        await asyncio.to_thread(admin.close)


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 when the execution ended as asked, 1 when it failed, 2 when it could not start."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)  # kafka-python narrates every connection
    password = os.environ.get(PASSWORD_ENV)
    if not password:
        print(f"set ${PASSWORD_ENV} to the password of {args.username!r}", file=sys.stderr)
        return 2
    try:
        state = asyncio.run(_run_cli(args, password))
    except ExecutorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(state.message)
    return 1 if state.phase == Phase.FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
