"""Fixtures every test can use: broker addresses, per-test names, a Redis queue and PostgreSQL schemas.

Tests talk to real brokers (``tests/support/brokers.py`` chooses them: ``REDIS_URL``, ``DATABASE_URL``).
Each test gets its own queue names (and, for PostgreSQL, its own schema) so tests can run in parallel.
Fixtures of one feature live in that feature's folder (e.g. ``tests/workers/conftest.py``).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from litestar_saq.backends.asyncpg import AsyncpgQueue
from litestar_saq.backends.redis import RedisQueue
from tests.support.brokers import DATABASE_URL, REDIS_URL, delete_redis_keys


@pytest.fixture
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
def database_url() -> str:
    return DATABASE_URL


@pytest.fixture
def queue_name(request: pytest.FixtureRequest) -> str:
    """A queue name no other test uses, readable in broker dumps."""
    test_name = request.node.name.split("[")[0][:30]
    return f"t-{test_name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def redis_queue(queue_name: str, redis_url: str) -> AsyncIterator[RedisQueue]:
    """A connected ``RedisQueue`` named ``queue_name`` (a client handle); its keys are deleted afterwards."""
    queue = RedisQueue.from_url(redis_url, name=queue_name)
    await queue.connect()
    yield queue
    await delete_redis_keys(queue.redis, queue_name)
    await queue.disconnect()


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
