"""``PluginWorker`` alone: its lifecycle (start, stop in every state, restart), and how it records jobs.

Every test runs on ``memory://`` and on Redis, with a real worker on a real queue.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from saq.job import Job, Status
from saq.queue import Queue

from litestar_saq import QueueConfig
from litestar_saq.backends.redis import RedisQueue
from litestar_saq.supervisor import DRAIN_MARGIN_S, drain_timeout_for
from litestar_saq.worker import PluginWorker, drain_budget_s
from tests.support.brokers import backend_queue, dequeue_waiters
from tests.support.poll import wait_until

pytestmark = pytest.mark.parametrize("backend", ["memory", "redis"])


class Tasks:
    """The tasks of one test, with events to see and steer them."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.ran: list[str] = []

    async def echo(self, ctx: Any, *, value: str) -> str:
        self.ran.append(value)
        return value

    async def wait_for_release(self, ctx: Any) -> str:
        self.started.set()
        await self.release.wait()
        return "released"

    async def sleep_long(self, ctx: Any) -> None:
        self.started.set()
        await asyncio.sleep(60)

    def add(self, ctx: Any, *, a: int, b: int) -> int:  # a plain def runs in a thread
        return a + b

    def functions(self) -> list[tuple[str, Callable[..., Any]]]:
        return [(name, getattr(self, name)) for name in ("echo", "wait_for_release", "sleep_long", "add")]


@pytest.fixture
async def queue(backend: str, queue_name: str) -> AsyncIterator[Queue]:
    async with backend_queue(backend, queue_name) as queue:
        yield queue


@pytest.fixture
def tasks() -> Tasks:
    return Tasks()


@pytest.fixture
def make_worker(queue: Queue, tasks: Tasks) -> Callable[..., PluginWorker]:
    def make(**options: Any) -> PluginWorker:
        options.setdefault("shutdown_grace_period_s", 5)
        return PluginWorker(queue, tasks.functions(), **options)

    return make


async def finished(queue: Queue, job: Job, *statuses: Status) -> Job:
    """Wait until ``job`` is stored in one of ``statuses`` and return its stored state."""

    async def stored_in_status() -> Job | None:
        stored = await queue.job(job.key)
        return stored if stored is not None and stored.status in statuses else None

    return await wait_until(stored_in_status, what=lambda: f"job {job.key} to be {statuses}")  # type: ignore[no-any-return]


async def settled(queue: Queue, *, queued: int) -> bool:
    """Whether ``queued`` jobs wait in the queue and none is taken."""
    return await queue.count("queued") == queued and await queue.count("active") == 0


async def enqueue(queue: Queue, function: str, **kwargs: Any) -> Job:
    job = await queue.enqueue(function, **kwargs)
    assert job is not None
    return job


# --- stopping ---------------------------------------------------------------------------------------


async def test_stop_while_idle_is_prompt_and_leaves_later_jobs_queued(
    queue: Queue, make_worker: Callable[..., PluginWorker]
) -> None:
    worker = make_worker(shutdown_grace_period_s=30)
    run = asyncio.create_task(worker.start())
    with dequeue_waiters(queue) as waiting:
        await wait_until(lambda: waiting() == worker.concurrency, what="every slot to wait for a job")
        started = time.monotonic()
        await worker.stop()
        assert time.monotonic() - started < 1.5  # not the 30 s grace period: nothing was running
    await asyncio.wait_for(run, 1)
    job = await enqueue(queue, "echo", value="after the stop")
    # On Redis a blocking take the stop left under way may pick the job up and put it straight back.
    await wait_until(lambda: settled(queue, queued=1), what="the job to wait in the queue")
    assert (await queue.job(job.key)).status == Status.QUEUED  # type: ignore[union-attr]


async def test_stop_while_jobs_arrive_loses_none(
    queue: Queue, make_worker: Callable[..., PluginWorker], tasks: Tasks
) -> None:
    worker = make_worker(concurrency=4)
    run = asyncio.create_task(worker.start())
    jobs = [await enqueue(queue, "echo", value=str(number)) for number in range(20)]
    stopping = asyncio.create_task(worker.stop())  # while slots are taking jobs
    jobs += [await enqueue(queue, "echo", value=str(number)) for number in range(20, 40)]
    await asyncio.wait_for(stopping, 10)
    await asyncio.wait_for(run, 1)
    if isinstance(queue, RedisQueue):
        # A job whose BLMOVE reply was in flight when its idle slot was cancelled sits in the active
        # list, still queued; the sweep puts it back after its orphan grace (0 here, so the test need
        # not wait for it). The worker's own sweep may hold the sweep lock: release it.
        queue._judge.grace_s = 0
        await queue.redis.delete(queue.namespace("sweep"))
        await queue.sweep()
    statuses = [(await queue.job(job.key)).status for job in jobs]  # type: ignore[union-attr]
    assert set(statuses) <= {Status.COMPLETE, Status.QUEUED}
    completed = statuses.count(Status.COMPLETE)
    assert completed == len(tasks.ran)  # every job that ran is recorded as complete, once
    assert await queue.count("queued") == statuses.count(Status.QUEUED)


async def test_stop_while_a_job_is_starting_puts_it_back_without_using_an_attempt(
    queue: Queue, make_worker: Callable[..., PluginWorker], tasks: Tasks
) -> None:
    entered, hold = asyncio.Event(), asyncio.Event()

    async def slow_before_process(ctx: Any) -> None:
        entered.set()
        await hold.wait()  # the job is dequeued and marked active, its task not yet started

    worker = make_worker(before_process=[slow_before_process], shutdown_grace_period_s=0.2)
    run = asyncio.create_task(worker.start())
    job = await enqueue(queue, "echo", value="never ran", retries=1)
    await asyncio.wait_for(entered.wait(), 5)
    await asyncio.wait_for(worker.stop(), 5)
    await asyncio.wait_for(run, 1)
    stored = await finished(queue, job, Status.QUEUED)
    assert stored.attempts == 0
    assert stored.error == "worker stopped before the job started"
    assert tasks.ran == []


async def test_stop_gives_a_running_job_its_grace_period(
    queue: Queue, make_worker: Callable[..., PluginWorker], tasks: Tasks
) -> None:
    worker = make_worker(shutdown_grace_period_s=10)
    run = asyncio.create_task(worker.start())
    job = await enqueue(queue, "wait_for_release")
    await asyncio.wait_for(tasks.started.wait(), 5)
    stopping = asyncio.create_task(worker.stop())
    await wait_until(lambda: worker.event.is_set())
    assert not stopping.done()  # still waiting for the job
    tasks.release.set()
    await asyncio.wait_for(stopping, 5)
    await asyncio.wait_for(run, 1)
    stored = await finished(queue, job, Status.COMPLETE)
    assert stored.result == "released"


async def test_a_job_over_the_grace_period_is_cancelled_and_put_back(
    queue: Queue, make_worker: Callable[..., PluginWorker], tasks: Tasks
) -> None:
    worker = make_worker(shutdown_grace_period_s=0.3, cancellation_hard_deadline_s=0.5)
    run = asyncio.create_task(worker.start())
    job = await enqueue(queue, "sleep_long", timeout=120, retries=3)
    await asyncio.wait_for(tasks.started.wait(), 5)
    started = time.monotonic()
    await asyncio.wait_for(worker.stop(), worker.drain_budget_s + 1)
    assert time.monotonic() - started < 3
    await asyncio.wait_for(run, 1)
    stored = await finished(queue, job, Status.QUEUED)
    assert stored.error == "cancelled"
    assert stored.attempts == 1
    await wait_until(lambda: settled(queue, queued=1), what="the job to wait in the queue, not active")


async def test_stop_before_start_wins_and_a_stopped_worker_can_start_again(
    queue: Queue, make_worker: Callable[..., PluginWorker], tasks: Tasks
) -> None:
    worker = make_worker()
    run = asyncio.create_task(worker.start())
    await worker.stop()  # before the start task ran at all
    await asyncio.wait_for(run, 1)
    job = await enqueue(queue, "echo", value="second run")
    assert (await queue.job(job.key)).status == Status.QUEUED  # type: ignore[union-attr]
    run = asyncio.create_task(worker.start())
    await finished(queue, job, Status.COMPLETE)
    await worker.stop()
    await asyncio.wait_for(run, 1)
    assert tasks.ran == ["second run"]


async def test_cancelling_start_drains_and_propagates(
    queue: Queue, make_worker: Callable[..., PluginWorker], tasks: Tasks
) -> None:
    worker = make_worker()
    run = asyncio.create_task(worker.start())
    job = await enqueue(queue, "echo", value="x")
    await finished(queue, job, Status.COMPLETE)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(run, 5)
    await asyncio.wait_for(worker.stop(), 1)  # already stopped: returns at once


def test_the_supervisor_waits_for_the_workers_drain_budget(backend: str) -> None:
    queue_config = QueueConfig(
        name="budget",
        dsn="redis://127.0.0.1:6379/0",
        shutdown_grace_period_s=7,
        cancellation_hard_deadline_s=2,
    )
    assert drain_timeout_for([queue_config]) == drain_budget_s(7, 2) + DRAIN_MARGIN_S
    assert drain_budget_s(7, 2) > 7 + 2  # and leaves time to record the put-back jobs


# --- running jobs -----------------------------------------------------------------------------------


async def test_results_failures_sync_tasks_and_unknown_tasks(
    queue: Queue, make_worker: Callable[..., PluginWorker]
) -> None:
    worker = make_worker()
    run = asyncio.create_task(worker.start())
    try:
        echo = await enqueue(queue, "echo", value="hi")
        added = await enqueue(queue, "add", a=2, b=3)
        bad_kwargs = await enqueue(queue, "echo", wrong="argument", retries=1)
        unknown = await enqueue(queue, "no_such_task", retries=5)
        assert (await finished(queue, echo, Status.COMPLETE)).result == "hi"
        assert (await finished(queue, added, Status.COMPLETE)).result == 5
        failed = await finished(queue, bad_kwargs, Status.FAILED)
        assert "unexpected keyword argument 'wrong'" in (failed.error or "")
        refused = await finished(queue, unknown, Status.FAILED)
        assert refused.attempts == 1  # not retried: no attempt on this worker could succeed
        assert "asks for task 'no_such_task', which this worker does not have" in (refused.error or "")
    finally:
        await worker.stop()
        await run


async def test_a_job_past_its_timeout_is_retried_then_failed(
    queue: Queue, make_worker: Callable[..., PluginWorker]
) -> None:
    worker = make_worker()
    run = asyncio.create_task(worker.start())
    try:
        job = await enqueue(queue, "sleep_long", timeout=1, retries=2)
        stored = await finished(queue, job, Status.FAILED)
        assert stored.attempts == 2
        assert "TimeoutError" in (stored.error or "")
    finally:
        await worker.stop()
        await run


async def test_an_aborted_job_is_recorded_as_aborted(
    queue: Queue, make_worker: Callable[..., PluginWorker], tasks: Tasks
) -> None:
    worker = make_worker(timers={"abort": 1})
    run = asyncio.create_task(worker.start())
    try:
        job = await enqueue(queue, "sleep_long", timeout=60)
        await asyncio.wait_for(tasks.started.wait(), 5)
        await queue.abort(job, "stop it")
        stored = await finished(queue, job, Status.ABORTED)
        assert stored.error == "stop it"
        await wait_until(lambda: not worker.job_task_contexts, what="the job's task context to go")
    finally:
        await worker.stop()
        await run


async def test_hooks_run_around_each_job_and_a_failing_after_hook_keeps_the_worker(
    queue: Queue, make_worker: Callable[..., PluginWorker], caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    async def startup(ctx: Any) -> None:
        calls.append("startup")

    async def before(ctx: Any) -> None:
        calls.append(f"before {ctx['job'].kwargs['value']}")

    async def after(ctx: Any) -> None:
        calls.append(f"after {ctx['job'].kwargs['value']}")
        raise RuntimeError("after hook broke")

    async def shutdown(ctx: Any) -> None:
        calls.append("shutdown")

    worker = make_worker(
        startup=[startup], before_process=[before], after_process=[after], shutdown=[shutdown]
    )
    run = asyncio.create_task(worker.start())
    first = await enqueue(queue, "echo", value="1")
    await finished(queue, first, Status.COMPLETE)
    second = await enqueue(queue, "echo", value="2")
    await finished(queue, second, Status.COMPLETE)
    await wait_until(lambda: calls.count("after 2") == 1)
    await worker.stop()
    await run
    assert calls == ["startup", "before 1", "after 1", "before 2", "after 2", "shutdown"]
    assert "an after_process hook failed for job" in caplog.text


async def test_a_broker_error_while_taking_a_job_keeps_the_slot(
    queue: Queue, tasks: Tasks, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    failures = 2
    real_dequeue = queue.dequeue

    async def flaky_dequeue(**kwargs: Any) -> Job | None:
        """The first calls fail as a lost connection would; then the real broker answers."""
        nonlocal failures
        if failures:
            failures -= 1
            raise RedisConnectionError("connection lost (test)")
        return await real_dequeue(**kwargs)

    monkeypatch.setattr(queue, "dequeue", flaky_dequeue)
    worker = PluginWorker(queue, tasks.functions(), concurrency=1)
    run = asyncio.create_task(worker.start())
    try:
        job = await enqueue(queue, "echo", value="after the outage")
        await finished(queue, job, Status.COMPLETE)
        assert failures == 0
        assert caplog.text.count("taking a job failed; trying again shortly") == 2
    finally:
        await worker.stop()
        await run


async def test_burst_mode_ends_when_the_queue_is_empty(
    queue: Queue, make_worker: Callable[..., PluginWorker], tasks: Tasks
) -> None:
    for number in range(5):
        await enqueue(queue, "echo", value=str(number))
    worker = make_worker(burst=True, dequeue_timeout=0.2, concurrency=2)
    await asyncio.wait_for(worker.start(), 10)  # returns by itself
    assert sorted(tasks.ran) == ["0", "1", "2", "3", "4"]
    assert await queue.count("queued") == 0


async def test_a_job_that_ran_to_the_end_is_recorded_complete_even_if_the_stop_cuts_its_write(
    queue: Queue, make_worker: Callable[..., PluginWorker], tasks: Tasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    writing, never = asyncio.Event(), asyncio.Event()
    real_finish = queue.finish

    async def slow_finish(job: Job, status: Status, **kwargs: Any) -> None:
        if not writing.is_set():
            writing.set()
            await never.wait()  # the first write hangs: the stop's cancellation lands here
        await real_finish(job, status, **kwargs)

    monkeypatch.setattr(queue, "finish", slow_finish)
    worker = make_worker(shutdown_grace_period_s=0.1)
    run = asyncio.create_task(worker.start())
    job = await enqueue(queue, "echo", value="once", retries=3)
    await asyncio.wait_for(writing.wait(), 5)
    await asyncio.wait_for(worker.stop(), 5)
    await asyncio.wait_for(run, 1)
    stored = await finished(queue, job, Status.COMPLETE)
    assert stored.result == "once"
    assert stored.attempts == 1
    assert tasks.ran == ["once"]
    assert await queue.count("queued") == 0


async def test_repeated_starts_and_stops_leave_no_slot_running(
    queue: Queue, make_worker: Callable[..., PluginWorker], tasks: Tasks
) -> None:
    for cycle in range(12):
        worker = make_worker(shutdown_grace_period_s=0)
        run = asyncio.create_task(worker.start())
        jobs = [await enqueue(queue, "echo", value=f"{cycle}-{number}") for number in range(30)]
        await finished(queue, jobs[-1], Status.COMPLETE, Status.QUEUED)
        await asyncio.wait_for(worker.stop(), worker.drain_budget_s)
        await asyncio.wait_for(run, 1)
        slots = [task for task in asyncio.all_tasks() if task.get_name().startswith("saq-slot")]
        assert slots == [], f"cycle {cycle}: slots still running after stop(): {slots}"
    assert len(tasks.ran) == len(set(tasks.ran))  # no job ran twice across the stops
