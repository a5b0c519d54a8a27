"""Backend factories for the queue contract suite, and PostgreSQL schemas per test.

``QUEUE_FACTORIES`` maps a backend name to an async factory that takes a queue name and returns a
connected queue. Add a backend by adding an entry (and, if its data outlives the queue, a purge in
``QUEUE_PURGES``); ``contract_queue`` runs every contract test once per entry.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
from saq import Worker
from saq.queue import Queue

from litestar_saq.backends.asyncpg import AsyncpgQueue
from litestar_saq.backends.memory import MemoryQueue
from litestar_saq.backends.redis import RedisQueue
from tests.conftest import DATABASE_URL, REDIS_URL

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


async def make_memory_queue(name: str) -> Queue:
    queue = MemoryQueue(name=name)
    await queue.connect()
    return queue


async def purge_redis(queue: Queue) -> None:
    client = RedisQueue.from_url(REDIS_URL).redis
    try:
        keys = [key async for key in client.scan_iter(match=f"saq:*{queue.name}*")]
        if keys:
            await client.delete(*keys)
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
    "memory": make_memory_queue,
}
"""Backend name -> async factory taking a queue name and returning a connected queue."""

QUEUE_PURGES: dict[str, Callable[[Queue], Awaitable[None]]] = {
    "redis": purge_redis,
    "asyncpg": purge_postgres,
}
"""Backend name -> coroutine that deletes what a test's queue left in its broker (optional)."""


@pytest.fixture(params=sorted(QUEUE_FACTORIES))
def contract_backend(request: pytest.FixtureRequest) -> str:
    """The name of each backend in ``QUEUE_FACTORIES`` in turn."""
    backend: str = request.param
    return backend


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


@pytest.fixture
async def contract_queue(contract_backend: str, queue_name: str) -> AsyncIterator[Queue]:
    """A connected queue of each backend in ``QUEUE_FACTORIES``, disconnected and purged afterwards."""
    async with backend_queue(contract_backend, queue_name) as queue:
        yield queue


@pytest.fixture
async def pg_schema(database_url: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL schema for this test, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(f'CREATE SCHEMA "{schema}"')
        yield schema
    finally:
        await connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await connection.close()


@pytest.fixture
def schema_url(database_url: str, pg_schema: str) -> str:
    """``DATABASE_URL`` with its ``search_path`` set to this test's schema."""
    separator = "&" if "?" in database_url else "?"
    return f"{database_url}{separator}search_path={pg_schema}"


@pytest.fixture
def lock_keyspace() -> int:
    """An advisory-lock keyspace of this test's own.

    SAQ's psycopg queues keep the migration lock ``(keyspace, 0)`` while their pool lives, so tests
    (ours or anyone's) that share keyspace 0 would wait on each other when they create fresh schemas.
    """
    return random.randint(1_000_000, 2_000_000_000)


@pytest.fixture
async def asyncpg_queues(
    schema_url: str, queue_name: str, lock_keyspace: int
) -> AsyncIterator[Callable[..., Awaitable[AsyncpgQueue]]]:
    """Make connected ``AsyncpgQueue``s in this test's schema (default name: ``queue_name``)."""
    queues: list[AsyncpgQueue] = []

    async def make(**options: Any) -> AsyncpgQueue:
        options.setdefault("name", queue_name)
        options.setdefault("min_size", 1)
        options.setdefault("saq_lock_keyspace", lock_keyspace)
        queue = AsyncpgQueue.from_url(schema_url, **options)
        await queue.connect()
        queues.append(queue)
        return queue

    yield make
    for queue in queues:
        await queue.disconnect()


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], timeout: float = 5.0, every: float = 0.01
) -> None:
    """Poll ``predicate`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(every)


@asynccontextmanager
async def running_worker(queue: Queue, functions: Sequence[Any], **options: Any) -> AsyncIterator[Worker]:
    """Run a SAQ worker on ``queue`` in the background; stop it and wait for it on exit."""
    worker = Worker(queue, functions=list(functions), **options)
    task = asyncio.create_task(worker.start())

    async def started() -> bool:
        return hasattr(worker, "event")

    try:
        yield worker
    finally:
        await wait_until(started)
        worker.event.set()
        await task
