"""A SAQ ``Worker`` running in the test's event loop, stopped within a deadline."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from saq import Worker
from saq.queue import Queue

from tests.support.poll import wait_until


def slots_running(worker: Worker) -> bool:
    """True once ``worker.start()`` has created its job slots (its ``process`` tasks).

    ``start()`` replaces ``worker.event`` before it creates them and then waits on that event, so from
    here on ``worker.event.set()`` stops it. (The event made by ``__init__`` is not the one it waits on.)
    """
    return any(task.get_name() == "process" for task in worker.tasks)


@asynccontextmanager
async def running_worker(
    queue: Queue,
    functions: Sequence[Any],
    *,
    start_timeout: float = 10.0,
    stop_timeout: float = 15.0,
    **options: Any,
) -> AsyncIterator[Worker]:
    """Run a SAQ worker on ``queue`` in the background: entered once it runs, stopped on exit.

    Both waits have a deadline: a worker that does not start fails the test, one that does not stop is
    cancelled and fails it, so a test never hangs here.
    """
    worker = Worker(queue, functions=list(functions), **options)
    task = asyncio.create_task(worker.start(), name=f"test-worker:{queue.name}")
    started = False
    try:
        await wait_until(
            lambda: task.done() or slots_running(worker), timeout=start_timeout, what="the worker to start"
        )
        if task.done():
            task.result()  # raises what made start() fail
            raise AssertionError("the worker stopped as soon as it started")
        started = True
        yield worker
    finally:
        if not task.done():
            if started:
                worker.event.set()  # the event start() waits on: it made it before the slots
            else:
                task.cancel()
            done, _ = await asyncio.wait({task}, timeout=stop_timeout)
            if not done:
                task.cancel()
                await asyncio.wait({task}, timeout=5)
                raise AssertionError(f"the worker did not stop within {stop_timeout} s")
        with contextlib.suppress(asyncio.CancelledError):
            task.result()
