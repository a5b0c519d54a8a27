"""Our ``RedisQueue`` and SAQ's own share a queue: jobs enqueued by either (one by one or in bulk) run
exactly once, whichever workers take them, SAQ's and ours side by side."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from saq import Worker
from saq.job import Job, Status
from saq.queue.redis import RedisQueue as SAQRedisQueue

from litestar_saq.backends.redis import RedisQueue
from tests.support.poll import wait_until
from tests.support.workers import running_worker


@pytest.fixture
async def saq_queue(redis_url: str, queue_name: str) -> AsyncIterator[SAQRedisQueue]:
    queue = SAQRedisQueue.from_url(redis_url, name=queue_name)
    await queue.connect()
    yield queue
    keys = [key async for key in queue.redis.scan_iter(match=f"saq:*{queue_name}*")]
    if keys:
        await queue.redis.delete(*keys)
    await queue.disconnect()


@pytest.fixture
async def our_queue(redis_url: str, queue_name: str) -> AsyncIterator[RedisQueue]:
    queue = RedisQueue.from_url(redis_url, name=queue_name)
    await queue.connect()
    yield queue
    await queue.disconnect()


# SAQ's own queue still writes with SETEX, which redis-py 8 deprecates (ours does not).
@pytest.mark.filterwarnings("ignore:Call to deprecated setex:DeprecationWarning")
@pytest.mark.parametrize("workers", ["saq", "ours", "both"])
async def test_jobs_of_either_queue_run_once_on_any_workers(
    saq_queue: SAQRedisQueue, our_queue: RedisQueue, workers: str
) -> None:
    runs: Counter[int] = Counter()

    async def count(_ctx: Any, *, n: int) -> None:
        runs[n] += 1

    functions = [("count", count)]
    await our_queue.enqueue_many([("count", {"n": n}) for n in range(0, 400)])
    for n in range(400, 500):
        await our_queue.enqueue("count", n=n)
    for n in range(500, 600):
        await saq_queue.enqueue("count", n=n)
    on = {"saq": [saq_queue], "ours": [our_queue], "both": [saq_queue, our_queue]}[workers]
    async with _workers(on, functions):
        await wait_until(lambda: len(runs) == 600, timeout=60, what="every job to run")
        await wait_until(_nothing_incomplete(our_queue), timeout=30, what="every outcome to be recorded")
    assert max(runs.values()) == 1
    done = await saq_queue.job((await our_queue.enqueue_many([("count", {"n": 0, "key": "k"})]))[0].key)  # type: ignore[union-attr]
    assert done is not None  # SAQ reads what we write


def _nothing_incomplete(queue: RedisQueue) -> Any:
    async def check() -> bool:
        return await queue.count("incomplete") == 0 and await queue.count("active") == 0

    return check


class _workers:
    def __init__(self, queues: list[Any], functions: list[Any]) -> None:
        self._contexts = [running_worker(queue, functions, concurrency=10) for queue in queues]

    async def __aenter__(self) -> list[Worker]:
        return list(await asyncio.gather(*(context.__aenter__() for context in self._contexts)))

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(context.__aexit__(None, None, None) for context in self._contexts))


def test_our_job_blobs_are_byte_for_byte_saqs(our_queue: RedisQueue, saq_queue: SAQRedisQueue) -> None:
    jobs = [
        Job("count"),
        Job("count", kwargs={"n": 1}, key="k", timeout=0, retries=3, ttl=-1, scheduled=1_900_000_000),
        Job("count", meta={"a": [1, 2]}, result={"r": None}, error="boom", status=Status.FAILED, priority=2),
        Job("count", retry_backoff=2.5, retry_delay=1.0, progress=0.5, attempts=2, group_key="g"),
        Job("count", worker_id="w", result=[1, "x"]),
        Job("count", kwargs={}, meta={}, heartbeat=30, queued=1, started=2, completed=3, touched=4),
    ]
    for job in jobs:
        job.queue = our_queue
        ours = our_queue.serialize(job)
        job.queue = saq_queue
        assert ours == saq_queue.serialize(job), job
