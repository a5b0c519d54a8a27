"""Our Redis queue runs every job once and recovers orphans: no SAQ #277 double runs, no lost jobs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from saq.job import Job, Status

from litestar_saq import BrokerUnavailableError, QueueConfig
from litestar_saq.backends.redis import RedisQueue
from litestar_saq.backends.redis_recovery import OrphanJudge, Verdict
from litestar_saq.worker_group import build_worker
from tests.support.poll import wait_until


@pytest.fixture
async def queue(redis_url: str, queue_name: str) -> AsyncIterator[RedisQueue]:
    queue = RedisQueue.from_url(redis_url, name=queue_name, orphan_grace_s=1.0)
    await queue.connect()
    yield queue
    keys = [key async for key in queue.redis.scan_iter(match=f"*{queue_name}*")]
    if keys:
        await queue.redis.delete(*keys)
    await queue.disconnect()


async def count_run(ctx: dict[str, Any]) -> None:
    await ctx["queue"].redis.hincrby(f"runs:{ctx['queue'].name}", ctx["job"].key, 1)


def worker_for(queue: RedisQueue, **options: Any) -> Any:
    config = QueueConfig(
        name=queue.name,
        dsn="redis://unused",
        tasks=[count_run],
        timers={"sweep": 1, "schedule": 1},
        **options,
    )
    return build_worker(config, queue, Litestar(logging_config=None))


async def test_two_workers_with_a_sweep_every_second_run_each_job_exactly_once(
    redis_url: str, queue: RedisQueue
) -> None:
    jobs = 3000
    second = RedisQueue.from_url(redis_url, name=queue.name, orphan_grace_s=1.0)
    await second.connect()
    workers = [worker_for(queue, concurrency=10), worker_for(second, concurrency=10)]
    running = [asyncio.create_task(worker.start()) for worker in workers]
    try:
        for start in range(0, jobs, 250):
            await asyncio.gather(*(queue.enqueue("count_run") for _ in range(start, min(jobs, start + 250))))

        async def all_ran() -> bool:
            return await queue.redis.hlen(f"runs:{queue.name}") >= jobs and await queue.count("active") == 0

        await wait_until(all_ran, timeout=120, interval=0.2)
    finally:
        await asyncio.gather(*(worker.stop() for worker in workers))
        await asyncio.gather(*running)
        await second.disconnect()
    runs = await queue.redis.hgetall(f"runs:{queue.name}")  # counted once no worker runs: no late duplicate
    counts = [int(count) for count in runs.values()]
    assert len(counts) == jobs
    assert max(counts) == 1, f"{sum(c > 1 for c in counts)} jobs ran more than once"


async def test_sweep_leaves_a_just_dequeued_job_alone(queue: RedisQueue) -> None:
    """The race of SAQ #277: job moved to the active list, status not yet written."""
    job = await queue.enqueue("count_run")
    assert job is not None
    await queue.redis.lmove(queue._queued, queue._active, "LEFT", "RIGHT")  # what dequeue's BLMOVE does
    assert await queue.sweep(lock=1) == []  # first look: only a suspect
    stored = await queue.job(job.key)
    assert stored is not None
    assert stored.status == Status.QUEUED
    assert await queue.redis.lrange(queue._active, 0, -1) == [job.id.encode()]


async def test_job_dequeued_by_a_worker_that_died_goes_back_on_the_queue(queue: RedisQueue) -> None:
    job = await queue.enqueue("count_run")
    assert job is not None
    await queue.redis.lmove(queue._queued, queue._active, "LEFT", "RIGHT")

    async def swept() -> list[str]:
        await queue.redis.delete(queue._sweep)
        return await queue.sweep(lock=1)

    assert await wait_until(swept, timeout=5, interval=0.2) == [job.id]
    assert await queue.redis.lrange(queue._queued, 0, -1) == [job.id.encode()]
    assert await queue.redis.llen(queue._active) == 0


async def test_active_job_of_a_dead_worker_is_retried_without_waiting_for_its_timeout(
    queue: RedisQueue,
) -> None:
    job = await queue.enqueue("count_run", timeout=3600, retries=2)
    assert job is not None
    dequeued = await queue.dequeue(timeout=1)
    assert dequeued is not None
    dequeued.worker_id = "worker-that-died"
    dequeued.attempts = 1
    await dequeued.update(status=Status.ACTIVE)

    async def swept() -> list[str]:
        await queue.redis.delete(queue._sweep)
        return await queue.sweep(lock=1)

    assert await wait_until(swept, timeout=5, interval=0.2) == [job.id]
    retried = await queue.job(job.key)
    assert retried is not None
    assert retried.status == Status.QUEUED
    assert retried.error == "swept"


async def test_sweep_recovers_the_jobs_of_a_dead_worker_of_this_host_at_once(queue: RedisQueue) -> None:
    from litestar_saq.liveness import new_worker_id

    job = await queue.enqueue("count_run", retries=1, timeout=3600)
    assert job is not None
    dequeued = await queue.dequeue(timeout=1)
    assert dequeued is not None
    dead_pid = 2**22 + 12345  # above Linux's pid_max default: no such process
    dequeued.worker_id = new_worker_id().rsplit("-", 2)[0] + f"-{dead_pid}-0123abcd"
    dequeued.attempts = 1
    await dequeued.update(status=Status.ACTIVE)
    # No grace period and no wait for the worker's stats to expire: its process is known to be gone.
    assert await queue.sweep(lock=1) == [job.id]
    failed = await queue.job(job.key)
    assert failed is not None
    assert failed.status == Status.ABORTED  # no retries left
    assert failed.error == "swept"


async def test_undecodable_payload_fails_that_job_and_the_worker_goes_on(queue: RedisQueue) -> None:
    bad_key = "bad-payload"
    bad_id = queue.job_id(bad_key)
    await queue.redis.set(bad_id, b"\x80not json")
    await queue.redis.zadd(queue._incomplete, {bad_id: 0})
    await queue.redis.rpush(queue._queued, bad_id)
    good = await queue.enqueue("count_run")
    assert good is not None
    worker = worker_for(queue)
    running = asyncio.create_task(worker.start())
    try:
        finished = await wait_until(lambda: _terminal(queue, good.key))
        assert finished.status == Status.COMPLETE
        failed = await wait_until(lambda: _terminal(queue, bad_key))
    finally:
        await worker.stop()
        await running
    assert failed.status == Status.FAILED
    assert queue.name in failed.error
    assert "could not be decoded" in failed.error
    assert "not json" in failed.error


async def test_job_for_an_unknown_task_fails_once_with_a_clear_error(queue: RedisQueue) -> None:
    job = await queue.enqueue("send_mial", retries=3)
    assert job is not None
    worker = worker_for(queue)
    running = asyncio.create_task(worker.start())
    try:
        failed = await wait_until(lambda: _terminal(queue, job.key))
    finally:
        await worker.stop()
        await running
    assert failed.status == Status.FAILED
    assert failed.attempts == 1
    assert "asks for task 'send_mial', which this worker does not have" in failed.error
    assert "count_run" in failed.error


async def test_enqueue_while_redis_is_down_fails_fast_naming_the_queue() -> None:
    queue = RedisQueue.from_url("redis://:hunter2@127.0.0.1:1/0", name="outage", operation_timeout=3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(BrokerUnavailableError) as excinfo:
        await queue.enqueue("count_run")
    assert loop.time() - started < 4
    message = str(excinfo.value)
    assert "'outage'" in message
    assert "127.0.0.1:1" in message
    assert "hunter2" not in message
    await queue.disconnect()


async def test_connect_to_unreachable_redis_names_queue_and_host() -> None:
    queue = RedisQueue.from_url("redis://:hunter2@127.0.0.1:1/3", name="mail")
    with pytest.raises(
        BrokerUnavailableError, match=r"queue 'mail': cannot reach Redis at 127\.0\.0\.1:1/3"
    ) as excinfo:
        await queue.connect()
    assert "hunter2" not in str(excinfo.value)
    await queue.disconnect()


def test_orphan_judge_needs_the_grace_period() -> None:
    judge = OrphanJudge(grace_s=0)
    queued = Job(function="f", status=Status.QUEUED)
    assert judge.judge("a", queued, set()) is Verdict.REQUEUE
    finished = Job(function="f", status=Status.COMPLETE)
    assert judge.judge("b", finished, set()) is Verdict.FORGET
    running = Job(function="f", status=Status.ACTIVE, worker_id="w", started=10**13, timeout=0)
    assert judge.judge("c", running, {"w"}) is Verdict.KEEP
    assert judge.judge("c", running, set()) is Verdict.ORPHANED
    patient = OrphanJudge(grace_s=60)
    assert patient.judge("a", queued, set()) is Verdict.KEEP
    assert patient.judge("a", queued, set()) is Verdict.KEEP


async def _terminal(queue: RedisQueue, key: str) -> Job | None:
    job = await queue.job(key)
    return job if job is not None and job.status in (Status.COMPLETE, Status.FAILED, Status.ABORTED) else None


def _unique() -> str:
    return uuid.uuid4().hex


def test_worker_ids_tell_a_sweep_on_the_same_host_that_the_worker_died() -> None:
    import subprocess
    import sys

    from litestar_saq.liveness import new_worker_id, worker_died_on_this_host

    assert not worker_died_on_this_host(new_worker_id())  # this very process
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead_id = new_worker_id().rsplit("-", 2)[0] + f"-{child.pid}-0123abcd"
    assert worker_died_on_this_host(dead_id)
    assert not worker_died_on_this_host(f"elsewhere.1-{child.pid}-0123abcd")  # other hosts: stats decide
    assert not worker_died_on_this_host("5f0c-uuid-from-saq")
