"""``AsyncpgQueue`` takes back the running jobs of a worker on another host once its stats expired.

A worker of another host cannot be checked through ``/proc``: only its stats row tells that it lives.
These tests write such a worker's job and stats by hand (a host name and PID namespace this machine does
not have), so they run without network namespaces; ``tests/fleet/`` does it with real hosts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from saq.job import Job, Status

from litestar_saq.backends.asyncpg import AsyncpgQueue
from tests.support.poll import wait_until

MakeQueue = Callable[..., Awaitable[AsyncpgQueue]]
GRACE_S = 1.0
STATS_TTL_S = 1


async def _run_as_worker_of_another_host(queue: AsyncpgQueue, key: str, worker_id: str) -> Job:
    """Enqueue ``key`` and store it as running under ``worker_id``, as that worker's start write does."""
    assert await queue.enqueue("work", key=key, timeout=600, retries=3) is not None
    job = await queue.dequeue(timeout=5)
    assert job is not None and job.key == key
    job.worker_id = worker_id
    job.attempts = 1
    await queue.update(job, status=Status.ACTIVE, expire_at=None)
    return job


@contextlib.asynccontextmanager
async def _stats_kept_fresh(queue: AsyncpgQueue, worker_id: str) -> AsyncIterator[None]:
    """Refresh ``worker_id``'s stats every 0.2 s, as a live (however busy) worker's upkeep does."""

    async def refresh() -> None:
        while True:
            await queue.worker_info(worker_id, queue_key=queue.name, ttl=STATS_TTL_S)
            await asyncio.sleep(0.2)

    task = asyncio.create_task(refresh())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _status(queue: AsyncpgQueue, key: str) -> Any:
    job = await queue.job(key)
    assert job is not None
    return job.status


async def test_job_of_a_dead_worker_on_another_host_is_taken_back_after_stats_ttl_and_grace(
    asyncpg_queues: MakeQueue,
) -> None:
    queue = await asyncpg_queues(orphan_grace_s=GRACE_S)
    dead, alive = "far-host.1-100-aaaaaaaa", "far-host.1-101-bbbbbbbb"
    await queue.worker_info(dead, queue_key=queue.name, ttl=STATS_TTL_S)  # its last stats, never refreshed
    async with _stats_kept_fresh(queue, alive):
        await _run_as_worker_of_another_host(queue, f"{queue.name}-dead", dead)
        await _run_as_worker_of_another_host(queue, f"{queue.name}-slow", alive)
        started = time.monotonic()

        async def dead_workers_job_requeued() -> bool:
            await queue.sweep(lock=1)
            return await _status(queue, f"{queue.name}-dead") == Status.QUEUED

        await wait_until(dead_workers_job_requeued, timeout=10, interval=0.2, what="the dead worker's job")
        recovered_after = time.monotonic() - started
        # Its stats expire within ttl + 1 s (whole seconds on the server's clock), then the grace runs.
        assert GRACE_S <= recovered_after <= STATS_TTL_S + 1 + GRACE_S + 1.5, recovered_after
        # The live worker's job stays with it however long it runs: sweep well past the grace.
        deadline = time.monotonic() + 2 * GRACE_S + STATS_TTL_S
        while time.monotonic() < deadline:
            assert await queue.sweep(lock=1) == []
            await asyncio.sleep(0.2)
        slow = await queue.job(f"{queue.name}-slow")
        assert slow is not None and slow.status == Status.ACTIVE and slow.worker_id == alive
    requeued = await queue.job(f"{queue.name}-dead")
    assert requeued is not None and "its worker sent no stats" in (requeued.error or "")
    assert requeued.attempts == 1


async def test_job_just_dequeued_by_a_live_process_of_another_host_is_kept(asyncpg_queues: MakeQueue) -> None:
    """Until the Worker's start write lands, a job carries its process's dequeuer id, not a worker id."""
    queue = await asyncpg_queues(orphan_grace_s=GRACE_S)
    worker = "far-host.1-200-cccccccc"
    async with _stats_kept_fresh(queue, worker):
        await _run_as_worker_of_another_host(queue, f"{queue.name}-fresh", "far-host.1-200-dequeued")
        deadline = time.monotonic() + 2 * GRACE_S + STATS_TTL_S
        while time.monotonic() < deadline:
            assert await queue.sweep(lock=1) == []
            await asyncio.sleep(0.2)
    assert await _status(queue, f"{queue.name}-fresh") == Status.ACTIVE


@pytest.mark.parametrize("grace_s", [GRACE_S])
async def test_job_of_a_worker_that_never_wrote_stats_waits_the_grace(
    asyncpg_queues: MakeQueue, grace_s: float
) -> None:
    """A new worker may take a job before its first stats write: the grace covers that."""
    queue = await asyncpg_queues(orphan_grace_s=grace_s)
    await _run_as_worker_of_another_host(queue, f"{queue.name}-new", "far-host.1-300-dddddddd")
    assert await queue.sweep(lock=1) == []
    assert await _status(queue, f"{queue.name}-new") == Status.ACTIVE


async def test_late_finish_and_retry_of_a_job_taken_back_are_dropped(asyncpg_queues: MakeQueue) -> None:
    """A worker cut off past its stats ttl comes back and finishes its job: the job's new run wins."""
    queue = await asyncpg_queues(orphan_grace_s=GRACE_S)
    key, cut_off, taker = f"{queue.name}-late", "far-host.1-400-eeeeeeee", "near-host.2-500-ffffffff"
    stale = await _run_as_worker_of_another_host(queue, key, cut_off)

    async def requeued() -> bool:
        await queue.sweep(lock=1)
        return await _status(queue, key) == Status.QUEUED

    await wait_until(requeued, timeout=10, interval=0.2, what="the cut-off worker's job back")
    taken = await queue.dequeue(timeout=5)
    assert taken is not None and taken.key == key
    taken.worker_id, taken.attempts = taker, 2
    await queue.update(taken, status=Status.ACTIVE, expire_at=None)
    await queue.update(taken, progress=0.25)  # the taker's own progress write lands
    await queue.update(stale, progress=0.9, meta={"from": "cut-off"})  # a late progress write does not
    await queue.finish(stale, Status.COMPLETE, result="cut-off")
    await queue.retry(stale, error="late retry")
    running = await queue.job(key)
    assert running is not None and (running.status, running.worker_id) == (Status.ACTIVE, taker)
    assert (running.progress, running.meta) == (0.25, {})
    await queue.finish(taken, Status.COMPLETE, result="taker")
    done = await queue.job(key)
    assert done is not None and (done.status, done.result) == (Status.COMPLETE, "taker")


async def test_finish_of_a_job_still_held_is_stored_before_and_after_its_start_write(
    asyncpg_queues: MakeQueue,
) -> None:
    """The fence lets a worker's own finish through whether the stored job has its dequeuer id or its id."""
    queue = await asyncpg_queues()
    for label, start_written in (("quick", False), ("slow", True)):
        assert await queue.enqueue("work", key=f"{queue.name}-{label}") is not None
        job = await queue.dequeue(timeout=5)
        assert job is not None
        job.worker_id = "this-worker-id"  # as the Worker sets it; the stored job has the dequeuer id
        if start_written:
            await queue.update(job, status=Status.ACTIVE, expire_at=None)
        await queue.finish(job, Status.COMPLETE, result=label)
        assert await _status(queue, job.key) == Status.COMPLETE
