"""``enqueue_many`` on every backend: SAQ's enqueue rules per job, and every job runs exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from saq.job import Job, Status
from saq.queue import Queue

from litestar_saq.backends.asyncpg import AsyncpgQueue
from litestar_saq.job_options import JobOptionsQueue
from tests.support.poll import wait_until
from tests.support.workers import running_worker


def bulk_queue(queue: Queue) -> JobOptionsQueue:
    assert isinstance(queue, JobOptionsQueue), "every queue of litestar-saq has enqueue_many"
    return queue


async def test_enqueue_many_returns_the_jobs_in_order_and_none_for_duplicates(contract_queue: Queue) -> None:
    queue = bulk_queue(contract_queue)
    # Keys of this queue's own: SAQ's PostgreSQL table keys jobs by key alone, across queues.
    taken, k1, k3 = (f"{queue.name}-{suffix}" for suffix in ("taken", "k1", "k3"))
    await queue.enqueue("echo", key=taken, a=0)
    items: list[Any] = [
        ("echo", {"a": 1, "key": k1, "timeout": 7}),
        "noop",
        ("echo", {"a": 2, "key": taken}),  # already queued
        Job("echo", kwargs={"a": 3}, key=k3),
        ("echo", {"a": 4, "key": k1}),  # repeated within the batch
    ]
    jobs = await queue.enqueue_many(items)
    assert [job is None for job in jobs] == [False, False, True, False, True]
    first = jobs[0]
    assert first is not None
    stored = await queue.job(k1)
    assert stored is not None
    assert (stored.function, stored.kwargs, stored.timeout, stored.status) == (
        "echo",
        {"a": 1},
        7,
        Status.QUEUED,
    )
    assert await queue.count("queued") == 4
    stored_taken = await queue.job(taken)
    assert stored_taken is not None and stored_taken.kwargs == {"a": 0}
    assert await queue.enqueue_many([]) == []


async def test_every_job_of_enqueue_many_runs_exactly_once(contract_queue: Queue) -> None:
    queue = bulk_queue(contract_queue)
    runs: Counter[int] = Counter()

    async def count(_ctx: Any, *, n: int) -> None:
        runs[n] += 1

    total = 1200
    jobs = await queue.enqueue_many([("count", {"n": n}) for n in range(total)])
    assert all(job is not None for job in jobs)
    async with running_worker(queue, [("count", count)], concurrency=10):
        await wait_until(lambda: len(runs) == total, timeout=60, what="every job to run")
        await wait_until(lambda: _no_incomplete(queue), timeout=30, what="every outcome to be recorded")
    assert set(runs) == set(range(total))
    assert max(runs.values()) == 1


async def _no_incomplete(queue: Queue) -> bool:
    return await queue.count("incomplete") == 0


async def test_enqueue_many_on_postgres_notifies_only_when_a_job_went_in(
    schema_url: str, asyncpg_queues: Callable[..., Awaitable[AsyncpgQueue]], queue_name: str
) -> None:
    queue = await asyncpg_queues()
    listener = await asyncpg.connect(schema_url)
    payloads: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener(f"saq:{queue_name}", lambda *args: payloads.put_nowait(args[-1]))
    try:
        jobs = await queue.enqueue_many([("echo", {"a": 1, "key": f"{queue_name}-1"}), "noop", "noop"])
        assert all(job is not None for job in jobs)
        assert await asyncio.wait_for(payloads.get(), 5) == "saq:enqueue"
        duplicates = await queue.enqueue_many([("echo", {"a": 1, "key": f"{queue_name}-1"})])
        assert duplicates == [None]
        # A marker after the batch of duplicates: the next payload seen is the marker's, not the batch's.
        await listener.execute(f"NOTIFY \"saq:{queue_name}\", 'marker'")
        assert await asyncio.wait_for(payloads.get(), 5) == "marker"
    finally:
        await listener.close()
