"""The tests' one way to wait for something: poll the condition itself until a deadline.

Never sleep a fixed time to let something happen; wait for what should have happened::

    job = await wait_until(lambda: queue.job(key), what="the job to be stored")

``wait_until`` is for the event loop (the condition may be sync or async); ``wait_until_sync`` is its
twin for code that runs outside one (a fixture starting a server thread, a subprocess).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from saq.job import TERMINAL_STATUSES

if TYPE_CHECKING:
    from saq.job import Job

__all__ = ("until_finished", "wait_until", "wait_until_sync")

Description = str | Callable[[], str]


def _timed_out(timeout: float, what: Description) -> AssertionError:
    described = what() if callable(what) else what
    return AssertionError(f"timed out after {timeout} s waiting for {described}")


async def wait_until(
    condition: Callable[[], Any],
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
    what: Description = "the condition",
) -> Any:
    """Poll ``condition`` (sync or async) until it returns something truthy, and return that.

    Fails with ``AssertionError`` after ``timeout`` seconds; ``what`` (a text, or a callable giving one
    when the wait fails, e.g. to show the last state seen) names what was awaited.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise _timed_out(timeout, what)
        await asyncio.sleep(interval)


def wait_until_sync(
    condition: Callable[[], Any],
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
    what: Description = "the condition",
) -> Any:
    """``wait_until`` for code outside an event loop: ``condition`` is a plain callable."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise _timed_out(timeout, what)
        time.sleep(interval)


async def until_finished(job: Job, *, timeout: float = 10.0) -> Job:
    """Refresh ``job`` in place until it is complete, failed or aborted, and return it.

    Use it instead of SAQ's ``job.refresh(until_complete=...)``, which waits for a published status and
    on Redis misses one published before its subscription took effect (a fast worker hits that).
    """

    async def finished() -> bool:
        await job.refresh()
        return job.status in TERMINAL_STATUSES

    await wait_until(finished, timeout=timeout, what=lambda: f"job {job.key} to finish (still {job.status})")
    return job
