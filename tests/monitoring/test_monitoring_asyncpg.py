"""``monitored_job`` heartbeats on ``AsyncpgQueue``, whose start write may still be held back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from saq.job import Status

from litestar_saq.backends.asyncpg import AsyncpgQueue
from litestar_saq.monitoring import monitored_job
from tests.support.workers import running_worker

MakeQueue = Callable[..., Awaitable[AsyncpgQueue]]


@monitored_job(interval=0.2)
async def sleep_monitored(_ctx: Any, *, seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "done"


async def test_the_worker_reads_its_own_start_while_it_is_held_back(asyncpg_queues: MakeQueue) -> None:
    queue = await asyncpg_queues()
    seen: list[tuple[int, int, int, int, str | None]] = []

    async def read_own_start(ctx: Any) -> None:
        job = ctx["job"]
        stored = await job.queue.job(job.key)
        seen.append((job.attempts, job.started, stored.attempts, stored.started, stored.worker_id))

    job = await queue.enqueue("read_own_start")
    assert job is not None
    async with running_worker(queue, [("read_own_start", read_own_start)]):
        await job.refresh(until_complete=5)
    attempts, started, stored_attempts, stored_started, worker_id = seen[0]
    assert (stored_attempts, stored_started) == (attempts, started)
    assert worker_id is not None


async def test_a_monitored_job_outlives_its_heartbeat_and_a_busy_sweep(asyncpg_queues: MakeQueue) -> None:
    queue = await asyncpg_queues()
    job = await queue.enqueue("sleep_monitored", seconds=3, heartbeat=1, timeout=30, retries=3)
    assert job is not None
    async with running_worker(queue, [("sleep_monitored", sleep_monitored)], timers={"sweep": 1}):
        await job.refresh(until_complete=15)
    assert (job.status, job.result, job.attempts, job.error) == (Status.COMPLETE, "done", 1, None)
