"""A cancelled dequeue on our ``RedisQueue`` never leaves a job taken, and SAQ's own worker stops at once.

The blocking move from the queued list runs shielded: cancelling its caller returns at once, and a job
id the move takes afterwards (or whose job was being read) goes back to the head of the queued list.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from saq import Worker
from saq.job import Status

from litestar_saq.backends.redis import RedisQueue
from tests.support.brokers import dequeue_waiters
from tests.support.poll import wait_until


async def test_a_job_taken_after_its_dequeue_was_cancelled_goes_back_to_the_queue(
    redis_queue: RedisQueue,
) -> None:
    with dequeue_waiters(redis_queue) as waiting:
        dequeue = asyncio.create_task(redis_queue.dequeue())
        await wait_until(lambda: waiting() == 1, what="the dequeue to block in BLMOVE")
        dequeue.cancel()
        started = time.monotonic()
        with contextlib.suppress(asyncio.CancelledError):
            await dequeue
        assert time.monotonic() - started < 0.5  # the caller does not wait for the blocking read
        job = await redis_queue.enqueue("noop")  # the shielded BLMOVE is still waiting: it takes this
        assert job is not None

        async def back_in_the_queue() -> bool:
            queued = await redis_queue.redis.lrange(redis_queue.namespace("queued"), 0, -1)
            active = await redis_queue.redis.lrange(redis_queue.namespace("active"), 0, -1)
            return queued == [job.id.encode()] and active == []

        await wait_until(back_in_the_queue, what="the taken job id to go back to the queued list")
    stored = await redis_queue.job(job.key)
    assert stored is not None and stored.status == Status.QUEUED
    assert await redis_queue.dequeue(timeout=1) is not None  # and a later dequeue gets it


async def test_saqs_own_worker_stops_at_once_on_our_queue_50_times(redis_queue: RedisQueue) -> None:
    done = 0

    async def noop(ctx: Any) -> None:
        nonlocal done
        done += 1

    for round_number in range(50):
        target = done + 200
        worker: Worker[Any] = Worker(redis_queue, [("noop", noop)], concurrency=10)
        worker.SIGNALS = []
        for _ in range(200):
            await redis_queue.enqueue("noop")
        run = asyncio.create_task(worker.start())
        await wait_until(lambda: done >= target, what=lambda: f"round {round_number}: 200 jobs to run")  # noqa: B023
        started = time.monotonic()
        await asyncio.wait_for(worker.stop(), 10)
        await asyncio.wait_for(run, 10)
        assert time.monotonic() - started < 2, (
            f"round {round_number}: stop took {time.monotonic() - started:.1f} s"
        )
    assert done == 50 * 200
