"""``MemoryQueue`` driven by a real SAQ ``Worker``: the queue contract inside one process."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from itertools import pairwise
from typing import Any

import pytest
from saq.errors import InvalidUrlError
from saq.job import TERMINAL_STATUSES, CronJob, Status
from saq.queue.base import JobError
from saq.utils import now

from litestar_saq.backends.memory import MemoryQueue
from tests.support.brokers import dequeue_waiters
from tests.support.poll import wait_until
from tests.support.workers import running_worker as shared_running_worker

TIMERS: Any = {"sweep": 1, "abort": 0.1, "schedule": 0.1, "worker_info": 1}


async def add(ctx: dict[str, Any], *, a: int, b: int) -> int:
    return a + b


async def fail(ctx: dict[str, Any]) -> None:
    raise ValueError("boom")


async def hang(ctx: dict[str, Any]) -> None:
    await asyncio.Event().wait()


async def sleep_on_first_attempt(ctx: dict[str, Any], *, seconds: float) -> int:
    attempts: int = ctx["job"].attempts
    if attempts == 1:
        await asyncio.sleep(seconds)
    return attempts


@pytest.fixture
async def queue(queue_name: str) -> AsyncIterator[MemoryQueue]:
    memory_queue = MemoryQueue(name=queue_name)
    await memory_queue.connect()
    yield memory_queue
    await memory_queue.disconnect()


def running_worker(queue: MemoryQueue, functions: list[Any], **options: Any) -> Any:
    return shared_running_worker(queue, functions, concurrency=4, timers=TIMERS, **options)


def is_terminal(_key: str, status: Status) -> bool:
    return status in TERMINAL_STATUSES


async def test_from_url_accepts_memory_urls_only() -> None:
    assert MemoryQueue.from_url("memory://").name == "default"
    assert MemoryQueue.from_url("memory://anything/else?x=1", name="emails").name == "emails"
    with pytest.raises(InvalidUrlError, match="memory://"):
        MemoryQueue.from_url("redis://localhost")


async def test_enqueued_job_runs_and_stores_its_result(queue: MemoryQueue) -> None:
    async with running_worker(queue, [add]):
        job = await queue.enqueue("add", a=1, b=2)
        assert job is not None
        await job.refresh(until_complete=5)
    assert (job.status, job.result, job.attempts) == (Status.COMPLETE, 3, 1)


async def test_duplicate_key_is_refused_until_the_job_is_terminal(queue: MemoryQueue) -> None:
    first = await queue.enqueue("add", key="once", a=1, b=1)
    assert first is not None
    assert await queue.enqueue("add", key="once", a=2, b=2) is None
    dequeued = await queue.dequeue(timeout=1)
    assert dequeued is not None
    assert await queue.enqueue("add", key="once") is None
    await queue.finish(dequeued, Status.COMPLETE, result=2)
    again = await queue.enqueue("add", key="once", a=5, b=5)
    assert again is not None
    stored = await queue.job("once")
    assert stored is not None
    assert (stored.status, stored.kwargs) == (Status.QUEUED, {"a": 5, "b": 5})


async def test_stored_job_is_a_serialized_copy(queue: MemoryQueue) -> None:
    job = await queue.enqueue("add", a=1, b=2)
    assert job is not None
    job.kwargs = {"a": 100, "b": 100}
    stored = await queue.job(job.key)
    assert stored is not None
    assert stored.kwargs == {"a": 1, "b": 2}
    with pytest.raises(TypeError):
        await queue.enqueue("add", key="bad", a=object(), b=1)
    assert await queue.job("bad") is None
    assert await queue.count("incomplete") == 1


async def test_scheduled_job_does_not_run_before_its_time(queue: MemoryQueue) -> None:
    scheduled = math.ceil(time.time()) + 1
    async with running_worker(queue, [add]):
        job = await queue.enqueue("add", a=1, b=2, scheduled=scheduled)
        assert job is not None
        assert (await queue.count("queued"), await queue.count("incomplete")) == (0, 1)
        await job.refresh(until_complete=5)
    assert job.status == Status.COMPLETE
    assert job.started / 1000 >= scheduled


async def test_retries_wait_their_delay_then_complete(queue: MemoryQueue) -> None:
    attempt_times: dict[str, list[float]] = {}

    async def flaky(ctx: dict[str, Any]) -> int:
        job = ctx["job"]
        attempt_times.setdefault(job.key, []).append(time.time())
        if job.attempts < 3:
            raise RuntimeError("not yet")
        return int(job.attempts)

    async with running_worker(queue, [("flaky", flaky)]):
        fixed = await queue.enqueue("flaky", retries=3, retry_delay=0.2)
        backoff = await queue.enqueue("flaky", retries=3, retry_delay=0.1, retry_backoff=True)
        assert fixed is not None and backoff is not None
        await fixed.refresh(until_complete=5)
        await backoff.refresh(until_complete=5)
    assert (fixed.status, fixed.result) == (Status.COMPLETE, 3)
    assert (backoff.status, backoff.result) == (Status.COMPLETE, 3)
    fixed_times = attempt_times[fixed.key]
    gaps = [later - earlier for earlier, later in pairwise(fixed_times)]
    assert len(gaps) == 2 and min(gaps) >= 0.2


async def test_job_fails_when_retries_run_out(queue: MemoryQueue) -> None:
    async with running_worker(queue, [fail]):
        job = await queue.enqueue("fail", retries=2)
        assert job is not None
        await job.refresh(until_complete=5)
    assert (job.status, job.attempts) == (Status.FAILED, 2)
    assert job.error is not None and "ValueError: boom" in job.error


async def test_timed_out_job_is_retried_then_fails(queue: MemoryQueue) -> None:
    async with running_worker(queue, [sleep_on_first_attempt, hang]):
        recovers = await queue.enqueue("sleep_on_first_attempt", seconds=30, timeout=0.2, retries=2)
        hangs = await queue.enqueue("hang", timeout=0.2, retries=2)
        assert recovers is not None and hangs is not None
        await recovers.refresh(until_complete=5)
        await hangs.refresh(until_complete=5)
    assert (recovers.status, recovers.result) == (Status.COMPLETE, 2)
    assert (hangs.status, hangs.attempts) == (Status.FAILED, 2)
    assert hangs.error is not None and "TimeoutError" in hangs.error


async def test_abort_of_a_queued_job_takes_effect_at_once(queue: MemoryQueue) -> None:
    job = await queue.enqueue("add", a=1, b=2)
    assert job is not None
    await job.abort("not needed")
    assert (job.status, job.error) == (Status.ABORTED, "not needed")
    assert await queue.count("incomplete") == 0
    assert await queue.dequeue(timeout=0.05) is None
    stored = await queue.job(job.key)
    assert stored is not None and stored.status == Status.ABORTED
    assert await queue.enqueue("add", key=job.key, a=1, b=2) is not None


async def test_abort_of_an_active_job_cancels_its_task(queue: MemoryQueue) -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def block(ctx: dict[str, Any]) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with running_worker(queue, [("block", block)]):
        job = await queue.enqueue("block", timeout=0)
        assert job is not None
        await asyncio.wait_for(started.wait(), 5)
        await job.abort("stop it")
        assert job.status == Status.ABORTING
        await asyncio.wait_for(cancelled.wait(), 5)
        await job.refresh(until_complete=5)
    assert (job.status, job.error) == (Status.ABORTED, "stop it")
    assert await queue.count("active") == 0


async def test_heartbeat_keeps_a_job_alive_and_a_silent_job_is_swept(queue: MemoryQueue) -> None:
    silent_cancelled = asyncio.Event()

    async def beating(ctx: dict[str, Any]) -> str:
        for _ in range(12):  # 2.4 s: longer than the heartbeat and than one sweep interval
            await ctx["job"].update()
            await asyncio.sleep(0.2)
        return "alive"

    async def silent(ctx: dict[str, Any]) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            silent_cancelled.set()
            raise

    async with running_worker(queue, [("beating", beating), ("silent", silent)]):
        alive = await queue.enqueue("beating", heartbeat=1, timeout=0)
        stuck = await queue.enqueue("silent", heartbeat=1, timeout=0)
        assert alive is not None and stuck is not None
        await stuck.refresh(until_complete=5)
        await asyncio.wait_for(silent_cancelled.wait(), 5)
        await alive.refresh(until_complete=5)
    assert (stuck.status, stuck.error) == (Status.ABORTED, "swept")
    assert (alive.status, alive.result) == (Status.COMPLETE, "alive")


async def test_sweep_recovers_a_job_whose_worker_is_gone(queue: MemoryQueue) -> None:
    retried = await queue.enqueue("add", key="retried", retries=2, timeout=1)
    given_up = await queue.enqueue("add", key="given-up", retries=1, timeout=1)
    assert retried is not None and given_up is not None
    lost_attempts = []
    for _ in range(2):
        job = await queue.dequeue(timeout=1)
        assert job is not None
        job.started, job.attempts = now() - 5000, 1  # a worker that died 5 s into the job
        await job.update(status=Status.ACTIVE)
        lost_attempts.append(job)

    assert sorted(await queue.sweep(abort=0.05)) == ["given-up", "retried"]

    retried_now, given_up_now = await queue.jobs(["retried", "given-up"])
    assert retried_now is not None and retried_now.status == Status.QUEUED
    assert given_up_now is not None and (given_up_now.status, given_up_now.error) == (Status.ABORTED, "swept")
    # The dead attempt reporting late must not overwrite the retry.
    await queue.finish(lost_attempts[0], Status.COMPLETE, result=1)
    assert (await queue.jobs(["retried"]))[0].status == Status.QUEUED  # type: ignore[union-attr]


async def test_cron_job_is_enqueued_and_runs(queue: MemoryQueue) -> None:
    ticked = asyncio.Event()

    async def tick(ctx: dict[str, Any]) -> None:
        ticked.set()

    async with running_worker(queue, [], cron_jobs=[CronJob(tick, cron="* * * * * *")]):
        await asyncio.wait_for(ticked.wait(), 5)
        stored = await queue.job(f"cron:{tick.__qualname__}")
    assert stored is not None


async def test_counts_and_info_describe_the_queue(queue: MemoryQueue) -> None:
    for number in range(3):
        await queue.enqueue("add", key=f"now-{number}", a=number, b=0)
    await queue.enqueue("add", key="later", scheduled=int(time.time()) + 3600)
    await queue.dequeue(timeout=1)
    counts = {kind: await queue.count(kind) for kind in ("queued", "active", "incomplete")}
    assert counts == {"queued": 2, "active": 1, "incomplete": 4}
    with pytest.raises(ValueError, match="unknown"):
        await queue.count("bogus")  # type: ignore[arg-type]

    info = await queue.info(jobs=True)
    assert (info["name"], info["queued"], info["active"], info["scheduled"]) == (queue.name, 2, 1, 1)
    assert [job["key"] for job in info["jobs"]] == ["now-0", "now-1", "now-2", "later"]
    page = await queue.info(jobs=True, offset=1, limit=2)
    assert [job["key"] for job in page["jobs"]] == ["now-1", "now-2"]
    assert (await queue.info())["jobs"] == []

    await queue.write_worker_info("gone", {"queue_key": queue.name, "stats": None, "metadata": None}, ttl=0)
    async with running_worker(queue, [add], metadata={"host": "test"}) as worker:
        workers = await wait_until(lambda: _workers(queue))
        assert list(workers) == [worker.id]
        assert workers[worker.id]["metadata"] == {"host": "test"}
        await wait_until(lambda: _count_is(queue, "incomplete", 1))


async def _workers(queue: MemoryQueue) -> dict[str, Any]:
    return (await queue.info())["workers"]


async def _count_is(queue: MemoryQueue, kind: Any, expected: int) -> bool:
    return await queue.count(kind) == expected


async def test_apply_and_map_return_results_and_raise_failures(queue: MemoryQueue) -> None:
    async with running_worker(queue, [add, fail]):
        assert await queue.apply("add", a=1, b=2) == 3
        assert await queue.map("add", [{"a": 1, "b": 2}, {"a": 3, "b": 4}]) == [3, 7]
        with pytest.raises(JobError):
            await queue.apply("fail", timeout=5)
        outcomes = await queue.map("fail", [{}], return_exceptions=True, timeout=5)
        assert isinstance(outcomes[0], JobError)


async def test_ttl_decides_how_long_a_finished_job_is_kept(queue: MemoryQueue) -> None:
    async with running_worker(queue, [add]):
        for ttl in (1, 0, -1):
            await queue.enqueue("add", key=f"ttl{ttl}", ttl=ttl, a=1, b=1)
        await queue.listen(["ttl-1"], is_terminal)
        assert await queue.job("ttl-1") is None
        await wait_until(lambda: _count_is(queue, "incomplete", 0))
        assert await queue.job("ttl1") is not None
        await wait_until(lambda: _is_missing(queue, "ttl1"), timeout=3)
    kept = await queue.job("ttl0")
    assert kept is not None and kept.status == Status.COMPLETE


async def _is_missing(queue: MemoryQueue, key: str) -> bool:
    return await queue.job(key) is None


async def test_dequeue_waits_times_out_and_survives_cancellation(queue: MemoryQueue) -> None:
    assert await queue.dequeue(timeout=0.05) is None

    with dequeue_waiters(queue) as waiters:
        waiting = asyncio.create_task(queue.dequeue())
        await wait_until(waiters, what="the dequeue to wait for a job")
    job = await queue.enqueue("add", a=1, b=2)
    assert job is not None
    waiting.cancel()  # cancelled after it was woken, before it ran again
    outcome = (await asyncio.gather(waiting, return_exceptions=True))[0]
    if isinstance(outcome, asyncio.CancelledError):
        recovered = await queue.dequeue(timeout=1)
        assert recovered is not None and recovered.key == job.key
    else:
        assert outcome is not None and outcome.key == job.key


async def test_refresh_until_complete_times_out_without_a_worker(queue: MemoryQueue) -> None:
    job = await queue.enqueue("add", a=1, b=2)
    assert job is not None
    with pytest.raises(asyncio.TimeoutError):
        await job.refresh(until_complete=0.05)


async def test_queue_refuses_a_second_event_loop(queue: MemoryQueue) -> None:
    with pytest.raises(RuntimeError, match="another event loop"):
        await asyncio.to_thread(asyncio.run, queue.count("queued"))


async def test_progress_update_keeps_a_delayed_retry_waiting(queue: MemoryQueue) -> None:
    await queue.enqueue("add", key="later", retries=2, retry_delay=3600, a=1, b=1)
    running = await queue.dequeue(timeout=1)
    assert running is not None
    running.started, running.attempts = now(), 1
    await running.update(status=Status.ACTIVE)
    await running.retry("try later")
    waiting = await queue.job("later")
    assert waiting is not None
    await waiting.update(progress=0.5)
    assert (await queue.count("queued"), await queue.count("incomplete")) == (0, 1)
    assert await queue.schedule() == []


async def test_abort_between_dequeue_and_start_is_not_lost(queue: MemoryQueue) -> None:
    job = await queue.enqueue("add", a=1, b=1)
    assert job is not None
    dequeued = await queue.dequeue(timeout=1)
    assert dequeued is not None
    await job.abort("changed my mind")
    dequeued.started, dequeued.attempts = now(), 1
    await dequeued.update(status=Status.ACTIVE)  # what the worker does right after dequeue
    stored = await queue.job(job.key)
    assert stored is not None and (stored.status, stored.error) == (Status.ABORTING, "changed my mind")


async def test_heartbeat_from_a_replaced_attempt_is_ignored(queue: MemoryQueue) -> None:
    await queue.enqueue("add", key="twice", retries=3, a=1, b=1)
    first = await queue.dequeue(timeout=1)
    assert first is not None
    first.started, first.attempts = now() - 1000, 1
    await first.update(status=Status.ACTIVE)
    await queue.retry(await queue.job("twice"), "swept")  # type: ignore[arg-type]
    second = await queue.dequeue(timeout=1)
    assert second is not None
    second.started, second.attempts = now(), 2
    await second.update(status=Status.ACTIVE)

    await first.update(progress=0.9)
    await queue.finish(first, Status.FAILED, error="late")
    stored = await queue.job("twice")
    assert stored is not None and (stored.status, stored.attempts, stored.progress) == (Status.ACTIVE, 2, 0.0)


async def test_listen_accepts_async_callbacks_and_iter_jobs_filters(queue: MemoryQueue) -> None:
    seen: list[tuple[str, Status]] = []

    async def record(key: str, status: Status) -> bool:
        seen.append((key, status))
        return status == Status.ACTIVE

    job = await queue.enqueue("add", a=1, b=1)
    other = await queue.enqueue("add", a=2, b=2)
    assert job is not None and other is not None
    listening = asyncio.create_task(queue.listen([job.key], record, timeout=5))
    await wait_until(lambda: seen, what="the listener to report the queued job")  # it has subscribed
    await queue.dequeue(timeout=1)
    await listening
    assert seen == [(job.key, Status.QUEUED), (job.key, Status.ACTIVE)]
    await queue.listen([], record)
    assert [found.key async for found in queue.iter_jobs([Status.QUEUED])] == [other.key]
    assert [found.key async for found in queue.iter_jobs()] == [job.key, other.key]


async def test_heartbeat_of_an_aborting_job_keeps_the_abort(queue: MemoryQueue) -> None:
    job = await queue.enqueue("add", a=1, b=1, heartbeat=60)
    assert job is not None
    running = await queue.dequeue(timeout=1)
    assert running is not None
    running.started, running.attempts = now(), 1
    await running.update(status=Status.ACTIVE)
    await job.abort("why")
    await running.update(progress=0.5)  # the job's own heartbeat, from the worker's copy
    stored = await queue.job(job.key)
    assert stored is not None
    assert (stored.status, stored.error, stored.progress) == (Status.ABORTING, "why", 0.5)


async def test_many_jobs_each_run_exactly_once(queue: MemoryQueue) -> None:
    runs: dict[int, int] = {}

    async def count_run(ctx: dict[str, Any], *, number: int) -> int:
        runs[number] = runs.get(number, 0) + 1
        await asyncio.sleep(0)
        return number

    async with running_worker(queue, [("count_run", count_run)]):
        results = await queue.map("count_run", [{"number": number} for number in range(300)], timeout=10)
    assert results == list(range(300))
    assert runs == dict.fromkeys(range(300), 1)


async def test_jobs_cut_off_by_worker_shutdown_run_again_on_the_next_worker(queue: MemoryQueue) -> None:
    started = asyncio.Event()

    async def slow(ctx: dict[str, Any]) -> int:
        started.set()
        if ctx["job"].attempts == 1:
            await asyncio.Event().wait()
        return int(ctx["job"].attempts)

    async with running_worker(queue, [("slow", slow)]):
        job = await queue.enqueue("slow", retries=2, timeout=0)
        assert job is not None
        await asyncio.wait_for(started.wait(), 5)
    await job.refresh()
    assert (job.status, job.error) == (Status.QUEUED, "cancelled")
    async with running_worker(queue, [("slow", slow)]):
        await job.refresh(until_complete=5)
    assert (job.status, job.result) == (Status.COMPLETE, 2)
