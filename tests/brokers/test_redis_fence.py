"""``RedisQueue`` drops a worker's late finish of a job that was taken back (the fleet's "never both").

A worker cut off or frozen past its stats ttl loses its running jobs to the sweep; when it comes back
its finish must not land on the job's new run. The rule matches ``AsyncpgQueue``'s (see
``test_asyncpg_cross_host.py``): a worker's complete/failed finish counts only while the job is still
running (in the active list) and its stored blob still carries the worker's id.
"""

from __future__ import annotations

import copy

from saq.job import Job, Status

from litestar_saq.backends.redis import RedisQueue


async def _run_as(queue: RedisQueue, worker_id: str) -> Job:
    job = await queue.dequeue(timeout=5)
    assert job is not None
    job.worker_id = worker_id
    await queue.update(job, status=Status.ACTIVE)
    return job


async def test_late_finish_of_a_job_taken_back_is_dropped(redis_queue: RedisQueue) -> None:
    key = f"{redis_queue.name}-late"
    assert await redis_queue.enqueue("work", key=key, retries=3) is not None
    stale = await _run_as(redis_queue, "far-host.1-100-aaaaaaaa")
    swept = await redis_queue.job(key)
    assert swept is not None
    await redis_queue.retry(swept, error="swept")  # what the sweep does with a dead worker's job
    await redis_queue.finish(copy.copy(stale), Status.COMPLETE, result="late, job queued")
    stored = await redis_queue.job(key)
    assert stored is not None and stored.status == Status.QUEUED
    taker = await _run_as(redis_queue, "near-host.2-200-bbbbbbbb")
    await redis_queue.update(taker, progress=0.25)  # the taker's own progress write lands
    await redis_queue.update(copy.copy(stale), progress=0.9, meta={"from": "cut-off"})  # a late one not
    await redis_queue.finish(copy.copy(stale), Status.COMPLETE, result="late, job rerun")
    stored = await redis_queue.job(key)
    assert stored is not None and (stored.status, stored.worker_id) == (Status.ACTIVE, taker.worker_id)
    assert (stored.progress, stored.meta) == (0.25, {})
    await redis_queue.finish(taker, Status.COMPLETE, result="taker")
    stored = await redis_queue.job(key)
    assert stored is not None and (stored.status, stored.result) == (Status.COMPLETE, "taker")
    assert await redis_queue.count("active") == 0


async def test_aborts_and_finishes_of_jobs_no_worker_ran_are_not_fenced(redis_queue: RedisQueue) -> None:
    queued = await redis_queue.enqueue("work", key=f"{redis_queue.name}-queued")
    assert queued is not None
    queued.worker_id = "far-host.1-300-cccccccc"  # a retried job keeps its last worker's id
    await redis_queue.abort(queued, error="from the dashboard")
    aborted = await redis_queue.job(queued.key)
    assert aborted is not None and aborted.status == Status.ABORTED
    plain = await redis_queue.enqueue("work", key=f"{redis_queue.name}-plain")
    assert plain is not None
    await redis_queue.finish(plain, Status.COMPLETE, result=1)
    done = await redis_queue.job(plain.key)
    assert done is not None and done.status == Status.COMPLETE
