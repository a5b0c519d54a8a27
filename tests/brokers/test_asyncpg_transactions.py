"""Enqueue inside the caller's transaction: asyncpg connections and SQLAlchemy ``AsyncSession``s."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from litestar_saq.backends.asyncpg import AsyncpgQueue, enqueue_in_session

MakeQueue = Callable[..., Awaitable[AsyncpgQueue]]


@pytest.fixture
async def engine(database_url: str, pg_schema: str) -> AsyncIterator[AsyncEngine]:
    url = database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    engine = create_async_engine(url, connect_args={"server_settings": {"search_path": pg_schema}})
    yield engine
    await engine.dispose()


async def still_waiting(waiter: asyncio.Task[object], seconds: float = 0.3) -> bool:
    """Whether ``waiter`` is still pending after ``seconds`` (checks that nothing happens)."""
    done, _ = await asyncio.wait({waiter}, timeout=seconds)
    return not done


async def test_rolled_back_enqueue_leaves_no_job(schema_url: str, asyncpg_queues: MakeQueue) -> None:
    queue = await asyncpg_queues(fallback_poll_interval=60)
    waiter = asyncio.create_task(queue.dequeue(timeout=10))
    connection = await asyncpg.connect(schema_url)
    try:
        transaction = connection.transaction()
        await transaction.start()
        job = await queue.enqueue("echo", connection=connection, a=1)
        assert job is not None and job.kwargs == {"a": 1}
        assert await queue.job(job.key) is None  # invisible outside the transaction
        assert await still_waiting(waiter)
        await transaction.rollback()
    finally:
        await connection.close()
    assert await queue.job(job.key) is None
    assert await still_waiting(waiter)
    later = await queue.enqueue("echo", a=2)
    assert await waiter == later


async def test_committed_enqueue_wakes_the_worker_at_commit(
    schema_url: str, asyncpg_queues: MakeQueue
) -> None:
    # The safety-net poll is far away: only the NOTIFY sent at commit can wake the waiter quickly.
    queue = await asyncpg_queues(fallback_poll_interval=60)
    waiter = asyncio.create_task(queue.dequeue(timeout=10))
    connection = await asyncpg.connect(schema_url)
    try:
        async with connection.transaction():
            job = await queue.enqueue("echo", connection=connection, a=1)
            await connection.execute("SELECT 1")
            assert await still_waiting(waiter)
        committed = time.monotonic()
    finally:
        await connection.close()
    assert await asyncio.wait_for(waiter, 5) == job
    assert time.monotonic() - committed < 2


async def test_a_connection_kwarg_that_is_not_a_connection_stays_a_job_kwarg(
    asyncpg_queues: MakeQueue,
) -> None:
    queue = await asyncpg_queues()
    job = await queue.enqueue("echo", connection="replica")
    assert job is not None and job.kwargs == {"connection": "replica"}


async def test_session_rollback_discards_the_job(engine: AsyncEngine, asyncpg_queues: MakeQueue) -> None:
    queue = await asyncpg_queues(fallback_poll_interval=60)
    waiter = asyncio.create_task(queue.dequeue(timeout=10))
    async with AsyncSession(engine) as session:
        # Nothing ran in the session yet: SQLAlchemy has not sent BEGIN, and the job must still join it.
        job = await enqueue_in_session(queue, session, "echo", a=1)
        assert job is not None
        await session.rollback()
    assert await queue.job(job.key) is None
    assert await still_waiting(waiter)
    later = await queue.enqueue("echo", a=2)
    assert await waiter == later


async def test_session_commit_runs_the_job(engine: AsyncEngine, asyncpg_queues: MakeQueue) -> None:
    queue = await asyncpg_queues(fallback_poll_interval=60)
    waiter = asyncio.create_task(queue.dequeue(timeout=10))
    async with AsyncSession(engine) as session, session.begin():
        job = await enqueue_in_session(queue, session, "echo", a=1)
        assert job is not None
        assert await still_waiting(waiter)
    assert await asyncio.wait_for(waiter, 5) == job
