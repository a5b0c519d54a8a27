"""The SAQ queue contract, run against every backend in ``QUEUE_FACTORIES``.

Only behaviour every broker agrees on is asserted here, through SAQ's public ``Queue`` API and a real
SAQ ``Worker``; backend-specific facts live in each backend's own tests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from saq.job import Job, Status
from saq.queue import JobError, Queue

from tests.support.brokers import backend_queue, dequeue_waiters
from tests.support.poll import until_finished, wait_until
from tests.support.workers import running_worker


async def echo(_ctx: Any, *, a: int) -> int:
    return a


async def fail(_ctx: Any) -> None:
    raise ValueError("oops")


async def sleep_long(_ctx: Any) -> None:
    await asyncio.sleep(30)


FUNCTIONS = [echo, fail, sleep_long]


@pytest.fixture
async def other_queue(contract_backend: str, queue_name: str) -> AsyncIterator[Queue]:
    """A second queue on the same broker as ``contract_queue``, with another name."""
    async with backend_queue(contract_backend, queue_name + "-other") as queue:
        yield queue


async def enqueued(queue: Queue, job_or_func: str | Job, **kwargs: Any) -> Job:
    job = await queue.enqueue(job_or_func, **kwargs)
    assert job is not None
    return job


async def dequeued(queue: Queue, timeout: float = 5.0) -> Job:
    """Dequeue a job and start it the way SAQ's Worker does."""
    job = await queue.dequeue(timeout=timeout)
    assert job is not None
    job.started = int(time.time() * 1000)
    job.attempts += 1
    await job.update(status=Status.ACTIVE)
    return job


async def test_enqueue_then_read_back(contract_queue: Queue) -> None:
    job = await enqueued(contract_queue, "echo", a=1, timeout=3)
    stored = await contract_queue.job(job.key)
    assert stored == job
    assert stored is not None
    assert (stored.function, stored.kwargs, stored.timeout, stored.status) == (
        "echo",
        {"a": 1},
        3,
        Status.QUEUED,
    )
    assert await contract_queue.count("queued") == 1
    assert await contract_queue.count("incomplete") == 1
    assert await contract_queue.count("active") == 0


async def test_enqueue_with_a_key_already_queued_returns_none(contract_queue: Queue) -> None:
    first = await enqueued(contract_queue, "echo", key="same", a=1)
    assert await contract_queue.enqueue("echo", key="same", a=2) is None
    assert await contract_queue.count("queued") == 1
    stored = await contract_queue.job(first.key)
    assert stored is not None and stored.kwargs == {"a": 1}


async def test_scheduled_job_waits_until_due(contract_queue: Queue) -> None:
    await enqueued(contract_queue, "echo", a=1, scheduled=int(time.time()) + 3600)
    assert await contract_queue.count("queued") == 0
    assert await contract_queue.count("incomplete") == 1
    assert (await contract_queue.info())["scheduled"] == 1
    await contract_queue.schedule()
    assert await contract_queue.dequeue(timeout=0.2) is None


async def test_scheduled_job_runs_once_due(contract_queue: Queue) -> None:
    job = await enqueued(contract_queue, "echo", a=1, scheduled=int(time.time()) + 1)

    async def scheduled_and_dequeued() -> Job | None:
        await contract_queue.schedule()
        return await contract_queue.dequeue(timeout=0.2)

    got = await wait_until(scheduled_and_dequeued, timeout=5, interval=0, what="the job to become due")
    assert got == job


async def test_dequeue_marks_the_job_active(contract_queue: Queue) -> None:
    job = await enqueued(contract_queue, "echo", a=1)
    got = await dequeued(contract_queue)
    assert got == job
    assert got.status == Status.ACTIVE
    assert await contract_queue.count("queued") == 0
    assert await contract_queue.count("active") == 1
    assert await contract_queue.count("incomplete") == 1


async def test_dequeue_times_out_with_none(contract_queue: Queue) -> None:
    started = time.monotonic()
    assert await contract_queue.dequeue(timeout=0.3) is None
    assert time.monotonic() - started < 3


async def test_waiting_dequeue_wakes_up_on_enqueue(contract_queue: Queue) -> None:
    with dequeue_waiters(contract_queue) as waiters:
        waiter = asyncio.create_task(contract_queue.dequeue(timeout=5))
        # The waiter must be waiting before the job exists.
        await wait_until(waiters, timeout=3, interval=0.005, what="the dequeue to wait for a job")
        job = await enqueued(contract_queue, "echo", a=1)
    started = time.monotonic()
    assert await waiter == job
    assert time.monotonic() - started < 0.9


async def test_finish_complete_keeps_result(contract_queue: Queue) -> None:
    job = await enqueued(contract_queue, "echo", a=1)
    await dequeued(contract_queue)
    await contract_queue.finish(job, Status.COMPLETE, result={"answer": 42})
    stored = await contract_queue.job(job.key)
    assert stored is not None
    assert (stored.status, stored.result, stored.progress) == (Status.COMPLETE, {"answer": 42}, 1.0)
    assert await contract_queue.count("incomplete") == 0
    assert await contract_queue.count("active") == 0


async def test_finish_with_negative_ttl_deletes_the_job(contract_queue: Queue) -> None:
    job = await enqueued(contract_queue, "echo", a=1, ttl=-1)
    await dequeued(contract_queue)
    await contract_queue.finish(job, Status.COMPLETE, result=1)
    assert await contract_queue.job(job.key) is None


async def test_finished_job_expires_after_its_ttl(contract_queue: Queue) -> None:
    job = await enqueued(contract_queue, "echo", a=1, ttl=1)
    await dequeued(contract_queue)
    await contract_queue.finish(job, Status.COMPLETE, result=1)
    assert await contract_queue.job(job.key) is not None

    async def expired() -> bool:
        await contract_queue.sweep()
        return await contract_queue.job(job.key) is None

    await wait_until(expired, timeout=5, interval=0.2)


async def test_retry_queues_the_job_again(contract_queue: Queue) -> None:
    job = await enqueued(contract_queue, "echo", a=1, retries=2)
    await dequeued(contract_queue)
    await contract_queue.retry(job, "try again")
    assert contract_queue.retried == 1
    stored = await contract_queue.job(job.key)
    assert stored is not None
    assert (stored.status, stored.error) == (Status.QUEUED, "try again")
    assert await contract_queue.count("queued") == 1
    assert await contract_queue.count("active") == 0
    assert await dequeued(contract_queue) == job


async def test_retry_with_delay_schedules_the_job(contract_queue: Queue) -> None:
    job = await enqueued(contract_queue, "echo", a=1, retries=2, retry_delay=3600)
    await dequeued(contract_queue)
    await contract_queue.retry(job, "later")
    assert await contract_queue.count("queued") == 0
    assert await contract_queue.count("incomplete") == 1
    await contract_queue.schedule()
    assert await contract_queue.dequeue(timeout=0.2) is None


async def test_abort_of_a_queued_job_ends_it(contract_queue: Queue) -> None:
    job = await enqueued(contract_queue, "echo", a=1)
    await contract_queue.abort(job, "not needed")
    await job.refresh()
    assert job.status == Status.ABORTED
    assert job.error == "not needed"
    assert await contract_queue.count("incomplete") == 0
    assert await contract_queue.dequeue(timeout=0.2) is None


async def test_abort_of_a_running_job_cancels_it(contract_queue: Queue) -> None:
    async with running_worker(contract_queue, FUNCTIONS):
        job = await enqueued(contract_queue, "sleep_long", timeout=60)

        async def running() -> bool:
            await job.refresh()
            return job.status == Status.ACTIVE

        await wait_until(running)
        await job.abort("stop it")
        await until_finished(job, timeout=5)
        assert job.status == Status.ABORTED
        assert job.error == "stop it"


async def test_sweep_retries_a_stuck_job(contract_queue: Queue) -> None:
    job = await enqueued(contract_queue, "echo", a=1, timeout=1, retries=2)
    got = await dequeued(contract_queue)
    got.started = got.touched = int(time.time() * 1000) - 10_000
    await contract_queue.update(got, status=Status.ACTIVE)
    swept = await contract_queue.sweep(abort=0.1)
    assert swept == [job.id]
    await job.refresh()
    assert (job.status, job.error) == (Status.QUEUED, contract_queue.swept_error_message)


async def test_sweep_leaves_healthy_jobs_alone(contract_queue: Queue) -> None:
    await enqueued(contract_queue, "echo", a=1, timeout=60)
    await dequeued(contract_queue)
    assert await contract_queue.sweep(abort=0.1) == []
    assert await contract_queue.count("active") == 1


async def test_info_counts_and_workers(contract_queue: Queue) -> None:
    await enqueued(contract_queue, "echo", a=1)
    await enqueued(contract_queue, "echo", a=2)
    await enqueued(contract_queue, "echo", a=3, scheduled=int(time.time()) + 3600)
    await dequeued(contract_queue)
    await contract_queue.worker_info(
        "worker-1", queue_key=contract_queue.name, metadata={"host": "a"}, ttl=60
    )
    info = await contract_queue.info(jobs=True)
    assert info["name"] == contract_queue.name
    assert (info["queued"], info["active"], info["scheduled"]) == (1, 1, 1)
    assert info["workers"]["worker-1"]["metadata"] == {"host": "a"}
    assert info["workers"]["worker-1"]["queue_key"] == contract_queue.name
    assert info["jobs"]
    assert all(job["queue"] == contract_queue.name for job in info["jobs"])


async def test_reads_are_limited_to_the_queue(contract_queue: Queue, other_queue: Queue) -> None:
    mine = await enqueued(contract_queue, "echo", a=1)
    theirs = await enqueued(other_queue, "echo", a=2)
    await other_queue.worker_info("their-worker", queue_key=other_queue.name, ttl=60)
    assert await contract_queue.count("queued") == 1
    assert await contract_queue.job(theirs.key) is None
    assert await contract_queue.jobs([theirs.key, mine.key]) == [None, mine]
    info = await contract_queue.info(jobs=True)
    assert "their-worker" not in info["workers"]
    assert [job["key"] for job in info["jobs"]] == [mine.key]
    assert [job.key async for job in contract_queue.iter_jobs()] == [mine.key]


async def test_jobs_keeps_order_and_reports_missing(contract_queue: Queue) -> None:
    first = await enqueued(contract_queue, "echo", a=1)
    second = await enqueued(contract_queue, "echo", a=2)
    assert await contract_queue.jobs([second.key, "missing", first.key]) == [second, None, first]


async def test_iter_jobs_filters_by_status(contract_queue: Queue) -> None:
    for a in range(5):
        await enqueued(contract_queue, "echo", a=a)
    await dequeued(contract_queue)
    assert len([job async for job in contract_queue.iter_jobs(batch_size=2)]) == 5
    active = [job async for job in contract_queue.iter_jobs(statuses=[Status.ACTIVE])]
    assert [job.status for job in active] == [Status.ACTIVE]


async def test_update_without_status_keeps_the_stored_status(contract_queue: Queue) -> None:
    job = await enqueued(contract_queue, "echo", a=1)
    job.status = Status.ACTIVE
    await contract_queue.update(job, progress=0.5)
    stored = await contract_queue.job(job.key)
    assert stored is not None
    assert (stored.status, stored.progress) == (Status.QUEUED, 0.5)


async def test_a_running_worker_completes_an_enqueued_job_with_its_result(contract_queue: Queue) -> None:
    async with running_worker(contract_queue, FUNCTIONS):
        job = await enqueued(contract_queue, "echo", a=7)
        await until_finished(job, timeout=5)
        assert (job.status, job.result) == (Status.COMPLETE, 7)


async def test_failing_job_is_retried_then_failed(contract_queue: Queue) -> None:
    async with running_worker(contract_queue, FUNCTIONS):
        job = await enqueued(contract_queue, "fail", retries=2)
        await until_finished(job, timeout=5)
        assert job.status == Status.FAILED
        assert job.attempts == 2
        assert "oops" in (job.error or "")


async def test_apply_and_map_return_results(contract_queue: Queue) -> None:
    async with running_worker(contract_queue, FUNCTIONS):
        assert await contract_queue.apply("echo", a=1, poll_interval=0.05, timeout=5) == 1
        results = await contract_queue.map(
            "echo", [{"a": 1}, {"a": 2}, {"a": 3}], poll_interval=0.05, timeout=5
        )
        assert results == [1, 2, 3]
        with pytest.raises(JobError):
            await contract_queue.apply("fail", poll_interval=0.05, timeout=5)


async def test_batch_aborts_jobs_when_the_block_fails(contract_queue: Queue) -> None:
    with pytest.raises(RuntimeError):
        async with contract_queue.batch():
            job = await enqueued(contract_queue, "echo", a=1)
            raise RuntimeError("boom")
    await job.refresh()
    assert job.status == Status.ABORTED


def _is_terminal(_key: str, status: Status) -> bool:
    return status in (Status.COMPLETE, Status.FAILED, Status.ABORTED)


async def test_a_finish_just_before_a_wait_is_seen_at_once_200_times(
    contract_queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The race forced: refresh(until_complete) reads the job (still queued), then the job finishes,
    # then refresh starts waiting. SAQ's Redis queue subscribed only then and waited out its timeout.
    read_job = contract_queue.job
    finish_after_read: list[Job] = []

    async def job_then_finish(key: str) -> Job | None:
        found = await read_job(key)
        while finish_after_read:
            await contract_queue.finish(finish_after_read.pop(), Status.COMPLETE, result=key)
        return found

    monkeypatch.setattr(contract_queue, "job", job_then_finish)
    started = time.monotonic()
    for number in range(200):
        job = await enqueued(contract_queue, "echo", a=number, timeout=5)
        finish_after_read.append(await dequeued(contract_queue))
        await job.refresh(until_complete=5)  # the wait must not take its 5 s: 200 of them would be 1000 s
        assert job.status == Status.COMPLETE
        assert job.result == job.key
        finished = await enqueued(contract_queue, "echo", a=number, timeout=5)
        await contract_queue.finish(await dequeued(contract_queue), Status.FAILED, error="boom")
        await contract_queue.listen([finished.key], _is_terminal, timeout=5, poll_interval=30)
    assert time.monotonic() - started < 60


async def test_apply_and_map_return_as_soon_as_their_jobs_finish_200_times(contract_queue: Queue) -> None:
    # A fast worker finishes a job before apply/map start waiting on it: the wait must see it at once,
    # not at its next poll (poll_interval=30 would make 200 of them take hours).
    async with running_worker(contract_queue, FUNCTIONS, concurrency=4):
        started = time.monotonic()
        for number in range(100):
            assert await contract_queue.apply("echo", a=number, poll_interval=30, timeout=10) == number
            assert await contract_queue.map(
                "echo", [{"a": number}, {"a": -number}], poll_interval=30, timeout=10
            ) == [number, -number]
        assert time.monotonic() - started < 60
