"""Calls into an ``AsyncpgQueue`` from another event loop run on the queue's own loop.

An asyncpg pool belongs to the loop that created it. A sync task that refreshes its job with
``asyncio.run(job.refresh())`` (as SAQ's own tests do) calls the queue from a new loop in a worker
thread; using the pool there would hang or fail. ``on_queue_loop`` hands such a call to the queue's
loop and waits for it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, cast

from saq.queue import Queue

__all__ = ("on_queue_loop",)

F = TypeVar("F", bound=Callable[..., Coroutine[Any, Any, Any]])


def on_queue_loop(method: F) -> F:
    """Run ``method`` on the loop the queue connected on when it is called from another loop."""

    @functools.wraps(method)
    async def run(queue: Queue, *args: Any, **kwargs: Any) -> Any:
        own_loop = queue._loop  # SAQ's Queue.connect() records it; None before connect()
        if own_loop is None or own_loop is asyncio.get_running_loop() or own_loop.is_closed():
            return await method(queue, *args, **kwargs)
        future = asyncio.run_coroutine_threadsafe(method(queue, *args, **kwargs), own_loop)
        return await asyncio.wrap_future(future)

    return cast(F, run)  # run passes every argument through: method's signature
