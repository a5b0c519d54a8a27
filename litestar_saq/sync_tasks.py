"""Sync tasks: a plain ``def`` task runs in the worker's thread pool, and ``SyncJob`` reaches its job.

How many sync tasks of one worker run at once is bounded by ``QueueConfig.sync_task_threads`` (default:
the queue's ``concurrency``), the size of the worker's thread pool. The event loop keeps running the
worker's async jobs meanwhile.

A job's queue belongs to the worker's event loop, so a sync task must not refresh or update its job
with ``asyncio.run`` (that would use the queue's connections from another loop). ``SyncJob`` runs those
calls on the worker's loop and waits for them::

    @task(timeout=300)
    def resize(ctx: TaskContext, *, path: str) -> None:
        job = SyncJob(ctx)
        for step in range(10):
            if job.is_aborting():                 # refreshes the job: stop early when aborted
                return
            ...                                   # blocking work
            job.update(progress=(step + 1) / 10)
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from saq.job import Job, Status

from litestar_saq.exceptions import UsageError

__all__ = ("SyncJob", "run_in_worker_thread")

logger = logging.getLogger("litestar_saq")

T = TypeVar("T")

_worker_loop: contextvars.ContextVar[asyncio.AbstractEventLoop] = contextvars.ContextVar("litestar_saq_loop")
"""The event loop of the worker that started the sync task running in this thread."""


async def run_in_worker_thread(ctx: Any, function: Callable[..., Any], arguments: dict[str, Any]) -> Any:
    """Run sync task ``function(ctx, **arguments)`` in the worker's thread pool and return its result.

    A cancelled job (timeout, abort, stop) waits for the thread to return: a thread cannot be stopped,
    and the job's dependencies must stay open while it uses them. A task that should stop early checks
    ``SyncJob(ctx).is_aborting()``.
    """
    loop = asyncio.get_running_loop()
    _worker_loop.set(loop)
    context = contextvars.copy_context()
    pool = getattr(ctx.get("worker"), "pool", None)
    future = loop.run_in_executor(pool, functools.partial(context.run, function, ctx, **arguments))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        try:
            await future
        except Exception:  # the job is cancelled; that is what it records
            logger.debug("a cancelled sync task ended with an error", exc_info=True)
        raise


class SyncJob:
    """The job of a sync task, for use in its thread: ``refresh``, ``update``, ``is_aborting``, ``run``.

    Args:
        ctx: the task's ``ctx``.
        timeout: seconds to wait for each call on the worker's loop.

    Raises:
        RuntimeError: not inside a sync task run by a litestar-saq worker.
    """

    def __init__(self, ctx: Any, *, timeout: float = 30.0) -> None:
        loop = _worker_loop.get(None)
        if loop is None:
            raise UsageError("SyncJob works inside a sync (def) task run by a litestar-saq worker")
        self.job: Job = ctx["job"]
        """The job, as of the last ``refresh``."""
        self._loop = loop
        self._timeout = timeout

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the worker's event loop and return its result (from the task's thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(self._timeout)

    def refresh(self) -> Job:
        """Read the job's current state from the broker (its status shows an abort) and return it."""
        self.run(self.job.refresh())
        return self.job

    def update(self, **fields: Any) -> None:
        """Store ``fields`` of the job (``progress=0.5``, ``meta={...}``) like ``job.update``."""
        self.run(self.job.update(**fields))

    def is_aborting(self) -> bool:
        """Refresh the job and say whether it is being aborted (or was)."""
        return self.refresh().status in (Status.ABORTING, Status.ABORTED)
