"""The brokers the tests run on, and a connected queue of each backend.

``REDIS_URL`` and ``DATABASE_URL`` choose the servers (defaults: the ones CI and the development machine
run on 127.0.0.1). ``QUEUE_FACTORIES`` maps a backend name to an async factory that takes a queue name
and returns a connected queue. Add a backend by adding an entry (and, if its data outlives the queue, a
purge in ``QUEUE_PURGES``); the contract suite (``tests/brokers/test_queue_contract.py``) and the
dashboard tests then run on it too.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import asyncpg
from saq.queue import Queue

from litestar_saq.backends.asyncpg import AsyncpgQueue
from litestar_saq.backends.memory import MemoryQueue
from litestar_saq.backends.redis import RedisQueue

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")

QueueFactory = Callable[[str], Awaitable[Queue]]


async def make_redis_queue(name: str) -> Queue:
    queue = RedisQueue.from_url(REDIS_URL, name=name)
    await queue.connect()
    return queue


async def make_asyncpg_queue(name: str) -> Queue:
    # Queues are isolated by name (every query filters by queue), so all share the default schema.
    queue = AsyncpgQueue.from_url(DATABASE_URL, name=name, min_size=1, max_size=20)
    await queue.connect()
    return queue


async def make_pgbouncer_queue(name: str) -> Queue:
    # Through a pgbouncer in transaction pooling mode; LISTEN and the sweep lock go direct.
    from tests.support.pgbouncer import bouncer_dsn

    queue = AsyncpgQueue.from_url(
        bouncer_dsn(DATABASE_URL), name=name, min_size=1, max_size=20, listen_dsn=DATABASE_URL
    )
    await queue.connect()
    return queue


async def make_memory_queue(name: str) -> Queue:
    queue = MemoryQueue(name=name)
    await queue.connect()
    return queue


async def delete_redis_keys(client: Any, queue_name: str) -> None:
    """Delete every key SAQ keeps for ``queue_name`` (``client``: a ``redis.asyncio.Redis``)."""
    keys = [key async for key in client.scan_iter(match=f"saq:*{queue_name}*")]
    if keys:
        await client.delete(*keys)


async def purge_redis(queue: Queue) -> None:
    client = RedisQueue.from_url(REDIS_URL).redis
    try:
        await delete_redis_keys(client, queue.name)
    finally:
        await client.aclose()


async def purge_postgres(queue: Queue) -> None:
    connection = await asyncpg.connect(DATABASE_URL)
    try:
        await connection.execute("DELETE FROM saq_jobs WHERE queue = $1", queue.name)
        await connection.execute("DELETE FROM saq_stats WHERE queue_key = $1", queue.name)
    finally:
        await connection.close()


QUEUE_FACTORIES: dict[str, QueueFactory] = {
    "redis": make_redis_queue,
    "asyncpg": make_asyncpg_queue,
    "asyncpg-pgbouncer": make_pgbouncer_queue,
    "memory": make_memory_queue,
}
"""Backend name -> async factory taking a queue name and returning a connected queue."""

QUEUE_PURGES: dict[str, Callable[[Queue], Awaitable[None]]] = {
    "redis": purge_redis,
    "asyncpg": purge_postgres,
    "asyncpg-pgbouncer": purge_postgres,
}
"""Backend name -> coroutine that deletes what a test's queue left in its broker (optional)."""


@asynccontextmanager
async def backend_queue(backend: str, name: str) -> AsyncIterator[Queue]:
    """A connected queue of ``backend`` named ``name``, disconnected and purged on exit."""
    queue = await QUEUE_FACTORIES[backend](name)
    try:
        yield queue
    finally:
        await queue.disconnect()
        purge = QUEUE_PURGES.get(backend)
        if purge is not None:
            await purge(queue)


@contextmanager
def dequeue_waiters(queue: Queue) -> Iterator[Callable[[], int]]:
    """Count the ``queue.dequeue()`` calls that are waiting for a job, as the backend itself sees them.

    Lets a test start a dequeue and wait until it really waits (instead of sleeping), then enqueue.
    """
    if isinstance(queue, AsyncpgQueue):
        # Subscribed to the queue's notifications and counted as a waiter (by its fetcher, if it has one).
        yield (
            lambda: (
                getattr(getattr(queue, "_fetcher", None), "waiting", None) or getattr(queue, "_waiting", 0)
            )
        )
    elif isinstance(queue, MemoryQueue):
        yield lambda: len(queue._job_ready._waiters or ())  # blocked on the "job ready" event
    elif isinstance(queue, RedisQueue):
        yield lambda: queue._taker.waiting  # blocked in BLMOVE, as the queue's taker counts them
    else:
        raise TypeError(f"no way to see the waiting dequeues of {type(queue).__name__}")
