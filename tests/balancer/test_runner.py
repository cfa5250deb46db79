"""The runner every control-plane loop shares: a cycle per interval, woken early,
stopped at once, surviving a cycle that fails, and ended by the exceptions it is told."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from streamplane.loops.runner import Wakeup, run_loop

LOG = logging.getLogger("test-runner")


async def _until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


def test_a_failed_cycle_is_logged_and_reported_and_the_next_one_runs(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []
    errors: list[Exception] = []

    async def cycle() -> str:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("boom")
        return "did something"

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run_loop(cycle, stop, 0.01, LOG, "test loop", on_error=errors.append))
        await _until(lambda: len(calls) >= 3)
        stop.set()
        await asyncio.wait_for(task, 1)

    with caplog.at_level(logging.INFO, logger="test-runner"):
        asyncio.run(main())
    assert [str(e) for e in errors] == ["boom"]
    assert "test loop: cycle failed" in caplog.text
    assert "test loop: did something" in caplog.text


def test_a_wakeup_runs_the_next_cycle_long_before_the_interval_and_stop_ends_the_wait() -> None:
    calls: list[float] = []
    wakeup = Wakeup()

    async def cycle() -> None:
        calls.append(asyncio.get_running_loop().time())

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run_loop(cycle, stop, 3600.0, LOG, "test", wakeup=wakeup))
        await _until(lambda: len(calls) == 1)
        wakeup.set()
        await _until(lambda: len(calls) == 2)
        stop.set()
        await asyncio.wait_for(task, 1)  # not an hour

    asyncio.run(main())


def test_an_exception_it_is_told_about_ends_the_loop_quietly() -> None:
    class Gone(Exception):
        pass

    async def cycle() -> None:
        raise Gone

    async def main() -> None:
        await asyncio.wait_for(run_loop(cycle, asyncio.Event(), 3600.0, LOG, "test", ends_on=(Gone,)), 1)

    asyncio.run(main())
