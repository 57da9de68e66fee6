"""Helpers for tests that run a `Monitor` on the event loop against the lab."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from hawatch.monitor import Monitor

T = TypeVar("T")


async def wait_until(
    what: str, check: Callable[[], T | None], timeout: float = 30.0, *, every: float = 0.02
) -> T:
    """`check()`'s first truthy value, polled on the loop (the monitor keeps running)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:.0f} s")
        await asyncio.sleep(every)


@contextlib.asynccontextmanager
async def running(monitor: Monitor, *, celery: bool = True) -> AsyncIterator[Monitor]:
    """Run `monitor` for the block (once its Celery side started, with `celery`); it must
    stop cleanly and promptly afterwards."""
    task = asyncio.create_task(monitor.run())
    try:
        if celery:
            await wait_until("the Celery side to start", lambda: monitor.celery_started, 20)
        yield monitor
    finally:
        task.cancel()
        started = time.monotonic()
        await asyncio.wait({task})
        assert time.monotonic() - started < 5.0
