"""AsyncpgQueue writes concurrent single enqueues in shared statements, each answered as if alone."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg
import pytest
from saq.job import Job, Status

from litestar_saq.backends.asyncpg import AsyncpgQueue
from tests.support.poll import wait_until

MakeQueue = Callable[..., Awaitable[AsyncpgQueue]]


@asynccontextmanager
async def inserts_blocked(schema_url: str) -> AsyncIterator[None]:
    """Hold a lock on the jobs table that makes inserts wait (reads go on) until the block ends."""
    connection = await asyncpg.connect(schema_url)
    try:
        async with connection.transaction():
            await connection.execute("LOCK TABLE saq_jobs IN EXCLUSIVE MODE")
            yield
    finally:
        await connection.close()


def writing_one_statement(queue: AsyncpgQueue) -> bool:
    """Whether a statement is under way with no enqueue queued behind it."""
    return queue._enqueues._writer is not None and not queue._enqueues._queued


async def test_concurrent_enqueues_share_statements_and_each_is_stored_once(
    asyncpg_queues: MakeQueue,
) -> None:
    queue, reader = await asyncpg_queues(), await asyncpg_queues()
    statements_before = queue._enqueues.statements

    jobs = await asyncio.gather(*(queue.enqueue("echo", a=index) for index in range(200)))

    assert all(job is not None for job in jobs)
    assert [job.kwargs["a"] for job in jobs if job] == list(range(200))
    assert len({job.key for job in jobs if job}) == 200
    assert queue._enqueues.statements > statements_before  # some shared a statement
    stored = await reader.jobs([job.key for job in jobs if job])
    assert [job.kwargs["a"] for job in stored if job] == list(range(200))
    assert await reader.count("queued") == 200


async def test_duplicates_in_one_batch_and_against_stored_jobs_follow_saq(
    schema_url: str, asyncpg_queues: MakeQueue
) -> None:
    queue = await asyncpg_queues()
    run = uuid.uuid4().hex
    queued_key, finished_key, twice_key = f"queued-{run}", f"finished-{run}", f"twice-{run}"
    assert await queue.enqueue("echo", key=queued_key, a=0) is not None
    finished = await queue.enqueue("echo", key=finished_key, a=0, scheduled=1)
    assert finished is not None
    await queue.finish(finished, Status.COMPLETE, result=0)

    async with inserts_blocked(schema_url):  # everything below queues up behind a first statement
        first = asyncio.create_task(queue.enqueue("echo", a=99))
        await wait_until(lambda: writing_one_statement(queue), timeout=5, what="the first statement")
        batch = [
            asyncio.create_task(queue.enqueue("echo", key=key, a=index))
            for index, key in enumerate([queued_key, twice_key, finished_key, twice_key, f"new-{run}"], 1)
        ]
        await wait_until(lambda: len(queue._enqueues._queued) == 5, timeout=5, what="five queued enqueues")
    results = await asyncio.gather(*batch)

    assert await first is not None
    assert [job is not None for job in results] == [False, True, True, False, True]
    stored = {key: await queue.job(key) for key in (queued_key, twice_key, finished_key)}
    assert [(job.kwargs["a"], job.status) for job in stored.values() if job] == [
        (0, Status.QUEUED),  # the stored queued job stays
        (2, Status.QUEUED),  # the first of the two in the batch
        (3, Status.QUEUED),  # the finished job was replaced
    ]


async def test_a_bad_job_fails_alone_and_its_batch_is_stored(
    schema_url: str, asyncpg_queues: MakeQueue
) -> None:
    queue, reader = await asyncpg_queues(), await asyncpg_queues()
    async with inserts_blocked(schema_url):
        first = asyncio.create_task(queue.enqueue("echo", a=-1))
        await wait_until(lambda: writing_one_statement(queue), timeout=5, what="the first statement")
        good = [asyncio.create_task(queue.enqueue("echo", a=index)) for index in range(10)]
        bad = asyncio.create_task(queue.enqueue("echo", a=10, priority=100_000))  # beyond SMALLINT
        await wait_until(lambda: len(queue._enqueues._queued) == 11, timeout=5, what="eleven queued enqueues")
    done = await asyncio.gather(first, *good)

    with pytest.raises(Exception, match=r"out of int16 range|out of range"):
        await bad
    assert all(job is not None for job in done)
    stored = await reader.jobs([job.key for job in done if job])
    assert sorted(job.kwargs["a"] for job in stored if job) == list(range(-1, 10))
    assert await reader.count("queued") == 11


async def test_a_cancelled_caller_loses_no_other_job(schema_url: str, asyncpg_queues: MakeQueue) -> None:
    queue, reader = await asyncpg_queues(), await asyncpg_queues()
    async with inserts_blocked(schema_url):
        in_flight = asyncio.create_task(queue.enqueue("echo", key=f"in-flight-{uuid.uuid4().hex}", a=-1))
        await wait_until(lambda: writing_one_statement(queue), timeout=5, what="the first statement")
        queued = [asyncio.create_task(queue.enqueue("echo", a=index)) for index in range(10)]
        await wait_until(lambda: len(queue._enqueues._queued) == 10, timeout=5, what="ten queued enqueues")
        for task in (in_flight, queued[3], queued[7]):
            task.cancel()
        await asyncio.gather(in_flight, queued[3], queued[7], return_exceptions=True)
        assert len(queue._enqueues._queued) == 8  # the two cancelled before their statement withdrew
    kept = await asyncio.gather(*(task for index, task in enumerate(queued) if index not in (3, 7)))

    assert in_flight.cancelled() and queued[3].cancelled() and queued[7].cancelled()
    await queue._enqueues.flush()
    stored: list[Job] = [job async for job in reader.iter_jobs([Status.QUEUED])]
    assert sorted(job.kwargs["a"] for job in stored) == [-1, 0, 1, 2, 4, 5, 6, 8, 9]  # in flight: written
    assert {job.key for job in kept if job} <= {job.key for job in stored}


async def test_enqueue_in_a_transaction_is_not_batched(schema_url: str, asyncpg_queues: MakeQueue) -> None:
    queue, reader = await asyncpg_queues(), await asyncpg_queues()
    connection = await asyncpg.connect(schema_url)
    try:
        transaction = connection.transaction()
        await transaction.start()
        results = await asyncio.gather(
            *(queue.enqueue("echo", a=index) for index in range(5)),
            queue.enqueue("echo", connection=connection, a=99),
            *(queue.enqueue("echo", a=index) for index in range(5, 10)),
        )
        await transaction.rollback()
    finally:
        await connection.close()

    assert all(job is not None for job in results)
    stored = [job async for job in reader.iter_jobs([Status.QUEUED])]
    assert sorted(job.kwargs["a"] for job in stored) == list(range(10))  # the rolled-back one is not there
