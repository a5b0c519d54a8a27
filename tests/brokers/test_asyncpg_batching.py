"""AsyncpgQueue writes the finishes of several slots in one statement, and never loses one doing so."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from saq.job import Job, Status

from litestar_saq.backends.asyncpg import AsyncpgQueue
from litestar_saq.backends.asyncpg_fetcher import LINGER_S
from litestar_saq.backends.asyncpg_finish_writes import MAX_BATCH
from tests.support.poll import wait_until
from tests.support.workers import running_worker

MakeQueue = Callable[..., Awaitable[AsyncpgQueue]]


async def echo(_ctx: Any, *, a: int) -> int:
    return a


async def dequeued(queue: AsyncpgQueue, count: int) -> list[Job]:
    """Take ``count`` jobs off ``queue`` as a worker would (marked active)."""
    jobs = []
    for _ in range(count):
        job = await queue.dequeue(timeout=5)
        assert job is not None
        jobs.append(job)
    return jobs


async def test_concurrent_finishes_share_statements_and_each_is_stored(asyncpg_queues: MakeQueue) -> None:
    queue, reader = await asyncpg_queues(), await asyncpg_queues()
    kept = [await queue.enqueue("echo", a=index) for index in range(20)]
    dropped = [await queue.enqueue("echo", a=index, ttl=-1) for index in range(10)]
    jobs = await dequeued(queue, 30)
    by_key = {job.key: job for job in jobs}
    batches_before = queue._finishes_written.batches

    async def finish(job: Job) -> None:
        if job.kwargs["a"] % 2:
            await queue.finish(job, Status.FAILED, error=f"e{job.kwargs['a']}")
        else:
            await queue.finish(job, Status.COMPLETE, result=job.kwargs["a"])

    await asyncio.gather(*(finish(job) for job in jobs))

    assert queue._finishes_written.batches - batches_before < len(jobs)
    for job in kept:
        assert job is not None
        stored = await reader.job(job.key)
        assert stored is not None
        odd = by_key[job.key].kwargs["a"] % 2
        assert stored.status == (Status.FAILED if odd else Status.COMPLETE)
        expected = (None, f"e{job.kwargs['a']}") if odd else (job.kwargs["a"], None)
        assert (stored.result, stored.error) == expected
    for job in dropped:
        assert job is not None
        assert await reader.job(job.key) is None
    assert await reader.count("incomplete") == 0


async def test_every_waited_job_of_a_batch_notifies(schema_url: str, asyncpg_queues: MakeQueue) -> None:
    client, queue = await asyncpg_queues(), await asyncpg_queues()
    enqueued = [await client.enqueue("echo", a=index, ttl=-1 if index % 2 else 60) for index in range(6)]
    keys = [job.key for job in enqueued if job is not None]
    notified: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(schema_url)
    await listener.add_listener(client._rows.done_channel, lambda *args: notified.put_nowait(args[-1]))
    ended: list[str] = []

    def finished(job_id: str, status: Status) -> bool:
        ended.append(job_id)
        return status == Status.COMPLETE

    try:
        # A poll interval far longer than the timeout: only the notification can end the wait in time.
        kept = [key for key, job in zip(keys, enqueued, strict=True) if job is not None and job.ttl >= 0]
        waiting = asyncio.create_task(client.listen(kept[:1], finished, timeout=10, poll_interval=60))
        await client._mark_waited(keys)  # what listen() does for the jobs it waits for
        jobs = await dequeued(queue, len(keys))
        await wait_until(lambda: _seen(ended))
        await asyncio.gather(*(queue.finish(job, Status.COMPLETE, result=1) for job in jobs))
        await asyncio.wait_for(waiting, 10)
        payloads = [await asyncio.wait_for(notified.get(), 5) for _ in keys]
    finally:
        await listener.close()
    assert sorted(payloads) == sorted(keys)  # deleted jobs (ttl < 0) included


async def _seen(ended: list[str]) -> bool:
    return bool(ended)


async def test_disconnect_writes_every_finish_handed_in(asyncpg_queues: MakeQueue) -> None:
    queue, reader = await asyncpg_queues(), await asyncpg_queues()
    count = 2 * MAX_BATCH + 50  # three statements
    assert all(await queue.enqueue_many(["echo"] * count))
    jobs = await dequeued(queue, count)
    finishing = [asyncio.create_task(queue.finish(job, Status.COMPLETE, result=7)) for job in jobs]
    await asyncio.sleep(0)  # every finish handed in, none written yet
    finishing[-1].cancel()  # a caller cancelled while it waits does not cancel its write
    await queue.disconnect()
    assert all(task.done() for task in finishing)
    await asyncio.gather(*finishing, return_exceptions=True)
    stored = await reader.jobs([job.key for job in jobs])
    assert [job.status if job else None for job in stored] == [Status.COMPLETE] * count
    assert await reader.count("incomplete") == 0


async def test_a_worker_stop_leaves_no_job_active(asyncpg_queues: MakeQueue) -> None:
    queue, reader = await asyncpg_queues(), await asyncpg_queues()
    runs: collections.Counter[str] = collections.Counter()

    async def count_run(ctx: Any) -> None:
        runs[ctx["job"].key] += 1

    await queue.enqueue_many(["count_run"] * 300)

    async def some_ran() -> bool:
        return len(runs) >= 100

    async with running_worker(queue, [("count_run", count_run)], concurrency=10):
        await wait_until(some_ran)
    await queue.disconnect()
    assert max(runs.values()) == 1
    assert await reader.count("active") == 0
    statuses = collections.Counter([job.status async for job in reader.iter_jobs()])
    assert statuses[Status.COMPLETE] == len(runs)
    assert statuses[Status.QUEUED] == 300 - len(runs)


async def test_a_job_claimed_for_a_slot_that_does_not_come_back_goes_back(asyncpg_queues: MakeQueue) -> None:
    queue, other = await asyncpg_queues(), await asyncpg_queues()
    first = await queue.enqueue("echo", a=1)
    second = await queue.enqueue("echo", a=2)
    assert first is not None and second is not None
    taken = (await dequeued(queue, 1))[0]
    # A finish from a slot that dequeued here claims the slot's next job while it is written...
    await queue.finish(taken, Status.COMPLETE, result=1)
    left = second if taken.key == first.key else first

    async def claimed() -> bool:
        return await other.count("active") == 1

    await wait_until(claimed)

    # ...and a slot that never asks for it does not keep it: it is queued again, its attempts unchanged.
    async def back() -> bool:
        stored = await other.job(left.key)
        return stored is not None and stored.status == Status.QUEUED

    await wait_until(back, timeout=LINGER_S + 5)
    stored = await other.job(left.key)
    assert stored is not None and (stored.attempts, stored.started) == (0, 0)
    again = await other.dequeue(timeout=5)
    assert again is not None and again.key == left.key
