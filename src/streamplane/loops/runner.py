"""The one way a loop runs: a cycle, then a wait that a wake-up or a stop cuts short.

Every loop of the control plane (the reconciler, the gateway supervisor, the balancing
service and each cluster's balancer) is a ``cycle`` that reads the world, acts, and
returns a sentence saying what it did. ``run_loop`` runs it until ``stop`` is set, logs
the sentence, and survives a failing cycle: the failure is logged and the next cycle
comes on time. An exception listed in ``ends_on`` ends the loop instead (the thing it
looks after is gone).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

Cycle = Callable[[], Awaitable[str | None]]
#: what to do when a cycle fails, besides logging it
OnError = Callable[[Exception], None]


class Wakeup:
    """Runs the next cycle of a loop now (call ``set`` from the event loop's thread)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    async def wait(self) -> None:
        await self._event.wait()


async def run_loop(cycle: Cycle, stop: asyncio.Event, interval_s: float, log: logging.Logger, what: str, *,
                   wakeup: Wakeup | None = None, ends_on: tuple[type[Exception], ...] = (),
                   on_error: OnError | None = None) -> None:
    """Run ``cycle`` every ``interval_s`` (sooner when woken) until ``stop`` is set."""
    while not stop.is_set():
        if wakeup is not None:
            wakeup.clear()
        try:
            said = await cycle()
            if said:
                log.info("%s: %s", what, said)
        except ends_on:
            return
        except Exception as exc:
            log.exception("%s: cycle failed", what)
            if on_error is not None:
                on_error(exc)
        await _pause(stop, wakeup, interval_s)


async def _pause(stop: asyncio.Event, wakeup: Wakeup | None, interval_s: float) -> None:
    waits: list[asyncio.Future[object]] = [asyncio.ensure_future(stop.wait())]
    if wakeup is not None:
        waits.append(asyncio.ensure_future(wakeup.wait()))
    try:
        await asyncio.wait(waits, timeout=interval_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
