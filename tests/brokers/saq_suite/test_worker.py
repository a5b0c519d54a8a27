"""SAQ 0.26.4's ``tests/test_worker.py`` (``TestWorker`` and ``TestWorkerPostgresQueue``) on ``AsyncpgQueue``.

Rewritten as pytest functions; the assertions are SAQ's. Fixed sleeps that waited for something to
happen became polls with a deadline; sleeps that let time pass were shortened where the test allows.

Left out:
- the base ``test_cron`` (needs ``time_machine``; SAQ overrides it for Postgres, ported below) and the
  base ``test_schedule`` (SAQ skips it for Postgres: ``schedule()`` returns ``[]``).
- ``TestHttpRedis`` and ``TestHttpPoll``: SAQ's aiohttp proxy queue, not a Postgres queue.
- ``test_stop`` runs its own event loop in a sync test (to stop a worker outside ``start``); ported as an
  async test with the same assertions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from saq import Worker
from saq.job import ACTIVE_STATUSES, TERMINAL_STATUSES, CronJob, Job, Status
from saq.utils import uuid1

from litestar_saq.backends.asyncpg import AsyncpgQueue
from litestar_saq.backends.asyncpg_fetcher import LINGER_S
from tests.brokers.saq_suite.functions import FUNCTIONS, cron, ctx_var
from tests.support.brokers import dequeue_waiters
from tests.support.poll import wait_until

MakeWorker = Callable[..., Worker]


async def enqueue(queue: AsyncpgQueue, function: str, **kwargs: Any) -> Job:
    job = await queue.enqueue(function, **kwargs)
    assert job is not None
    return job


async def status_becomes(job: Job, status: Status, timeout: float = 5) -> None:
    async def reached() -> bool:
        await job.refresh()
        return job.status == status

    await wait_until(reached, timeout=timeout)


async def job_running(worker: Worker) -> None:
    """Wait until the worker runs a job's task (past dequeue and its start write)."""

    async def running() -> bool:
        return bool(worker.job_task_contexts)

    await wait_until(running)


@pytest.fixture
def worker(make_worker: MakeWorker) -> Worker:
    return make_worker()


@pytest.fixture
def mock_logger() -> Any:
    with mock.patch("saq.worker.logger") as patched:
        yield patched


async def test_start(queue: AsyncpgQueue, worker: Worker, mock_logger: Any) -> None:
    task = asyncio.create_task(worker.start())
    job = await enqueue(queue, "noop")
    await job.refresh(0)
    assert job.result == 1
    job = await enqueue(queue, "error")
    await status_becomes(job, Status.FAILED)
    assert job.error is not None and "oops" in job.error
    job = await enqueue(queue, "sleeper", sleep=10)
    assert job.status == Status.QUEUED
    await status_becomes(job, Status.ACTIVE)
    await job_running(worker)
    task.cancel()
    await task
    await job.refresh()
    assert job.status == Status.QUEUED

    task = asyncio.create_task(worker.start())
    job = await enqueue(queue, "noop")
    await job.refresh(0)
    assert job.result == 1
    job = await enqueue(queue, "sleeper", sleep=10)
    assert job.status == Status.QUEUED
    await status_becomes(job, Status.ACTIVE)
    await job_running(worker)
    await worker.stop()
    await asyncio.wait_for(task, 1)
    await job.refresh()
    assert job.status == Status.QUEUED


async def test_noop(queue: AsyncpgQueue, worker: Worker) -> None:
    job = await enqueue(queue, "noop")
    assert job.started == 0
    assert job.completed == 0
    await worker.process()
    await job.refresh()
    assert job.started != 0
    assert job.completed != 0
    assert job.status == Status.COMPLETE
    assert job.result == 1


async def test_sleeper(queue: AsyncpgQueue, worker: Worker, mock_logger: Any) -> None:
    job = await enqueue(queue, "sleeper")
    await worker.process()
    await job.refresh()
    assert job.started != 0 and job.completed != 0
    assert job.status == Status.COMPLETE
    assert job.result == {"a": 1, "b": []}

    job = await enqueue(queue, "sleeper", timeout=0.05, retries=2)
    await worker.process()
    await worker.process()
    await job.refresh()
    assert job.attempts == 2
    assert job.started != 0 and job.completed != 0
    assert job.status == Status.FAILED
    assert job.error is not None and "TimeoutError" in job.error


async def test_error(queue: AsyncpgQueue, worker: Worker, mock_logger: Any) -> None:
    job = await enqueue(queue, "error", retries=2)
    await worker.process()
    await job.refresh()
    assert job.attempts == 1
    assert job.result is None
    assert job.started == 0
    assert job.completed == 0
    assert job.status == Status.QUEUED

    await worker.process()
    await job.refresh()
    assert job.started != 0 and job.completed != 0
    assert job.attempts == 2
    assert job.status == Status.FAILED
    assert job.error is not None and 'ValueError("oops")' in job.error


async def test_stop(queue: AsyncpgQueue, make_worker: MakeWorker) -> None:
    worker = make_worker()
    job = await enqueue(queue, "sleeper")
    assert job.status == Status.QUEUED
    worker.tasks.add(asyncio.create_task(worker.process()))
    await status_becomes(job, Status.ACTIVE)
    await job_running(worker)  # SAQ sleeps 0.05 s for the task to start

    await worker.stop()
    stored = await queue.job(job.key)
    assert stored is not None
    assert stored.queued != 0
    assert stored.started == 0
    assert stored.completed == 0
    assert stored.attempts == 1
    assert stored.status == Status.QUEUED
    assert stored.error == "cancelled"


async def test_hooks(queue: AsyncpgQueue, make_worker: MakeWorker, mock_logger: Any) -> None:
    x = {"before": 0, "after": 0}

    async def before_process(ctx: Any) -> None:
        assert ctx["job"] is not None
        x["before"] += 1

    async def after_process(ctx: Any) -> None:
        assert ctx["job"] is not None
        x["after"] += 1

    worker = make_worker(before_process=before_process, after_process=after_process)
    await queue.enqueue("noop")
    await worker.process()
    assert x == {"before": 1, "after": 1}

    await queue.enqueue("error")
    await worker.process()
    assert x == {"before": 2, "after": 2}

    with dequeue_waiters(queue) as waiters:
        task = asyncio.create_task(worker.process())
        await wait_until(waiters, what="process() to wait for a job")  # SAQ sleeps 0.05 s
    task.cancel()
    assert x == {"before": 2, "after": 2}


async def test_hooks_many(queue: AsyncpgQueue, make_worker: MakeWorker, mock_logger: Any) -> None:
    x = {"before_a": 0, "before_b": 0, "after_a": 0, "after_b": 0}

    async def before_process_a(ctx: Any) -> None:
        assert ctx["job"] is not None
        x["before_a"] += 1

    def before_process_b(ctx: Any) -> None:
        assert ctx["job"] is not None
        x["before_b"] += 1

    async def after_process_a(ctx: Any) -> None:
        assert ctx["job"] is not None
        x["after_a"] += 1

    def after_process_b(ctx: Any) -> None:
        assert ctx["job"] is not None
        x["after_b"] += 1

    worker = make_worker(
        before_process=[before_process_a, before_process_b], after_process=[after_process_a, after_process_b]
    )
    await queue.enqueue("noop")
    await worker.process()
    assert x == {"before_a": 1, "before_b": 1, "after_a": 1, "after_b": 1}

    await queue.enqueue("error")
    await worker.process()
    assert x == {"before_a": 2, "before_b": 2, "after_a": 2, "after_b": 2}

    with dequeue_waiters(queue) as waiters:
        task = asyncio.create_task(worker.process())
        await wait_until(waiters, what="process() to wait for a job")  # SAQ sleeps 0.05 s
    task.cancel()
    assert x == {"before_a": 2, "before_b": 2, "after_a": 2, "after_b": 2}


async def test_startup_shutdown_hooks_many(
    queue: AsyncpgQueue, make_worker: MakeWorker, mock_logger: Any
) -> None:
    x: dict[str, float] = {
        "startup_a": 0,
        "startup_b": 0,
        "shutdown_a": 0,
        "shutdown_b": 0,
        "dependent_start_at": 0.0,
        "dependent_exit_at": 0.0,
        "teardown_called_at": 0.0,
    }
    dependency_value = "test"

    async def startup_a(_ctx: Any) -> None:
        x["startup_a"] += 1

    def startup_b(_ctx: Any) -> None:
        x["startup_b"] += 1

    async def shutdown_a(_ctx: Any) -> None:
        x["shutdown_a"] += 1

    def shutdown_b(_ctx: Any) -> None:
        x["shutdown_b"] += 1

    async def dependency_setup(ctx: Any) -> None:
        ctx["dependency"] = dependency_value

    async def dependency_teardown(_ctx: Any) -> None:
        x["teardown_called_at"] = time.monotonic()

    async def dependent_task(ctx: Any, sleep: float) -> str | None:
        x["dependent_start_at"] = time.monotonic()
        try:
            await asyncio.sleep(sleep)
            return ctx.get("dependency")  # type: ignore[no-any-return]
        finally:
            x["dependent_exit_at"] = time.monotonic()

    worker = make_worker(
        [*FUNCTIONS, ("dependent_task", dependent_task)],
        startup=[startup_a, startup_b, dependency_setup],
        shutdown=[shutdown_a, shutdown_b, dependency_teardown],
    )
    task = asyncio.create_task(worker.start())
    job = await enqueue(queue, "noop")
    await job.refresh(0)
    assert job.result == 1
    assert (x["startup_a"], x["startup_b"], x["shutdown_a"], x["shutdown_b"]) == (1, 1, 0, 0)
    assert worker.context["dependency"] == dependency_value  # type: ignore[typeddict-item]

    job = await enqueue(queue, "dependent_task", sleep=0.5)
    await status_becomes(job, Status.ACTIVE)
    await job_running(worker)
    stop_called_at = time.monotonic()
    await worker.stop()
    await job.refresh()

    # Stopped while running, the job is cancelled and requeued midway.
    assert job.status == Status.QUEUED
    assert job.error == "cancelled"
    assert x["dependent_start_at"] > 0
    assert x["teardown_called_at"] > 0
    assert x["dependent_exit_at"] > 0
    # dependency starts -> worker asked to stop -> dependency exits -> teardown at shutdown
    assert x["dependent_start_at"] < stop_called_at < x["dependent_exit_at"] < x["teardown_called_at"]
    assert (x["startup_a"], x["startup_b"], x["shutdown_a"], x["shutdown_b"]) == (1, 1, 1, 1)
    await task


async def test_abort_status_after_process(queue: AsyncpgQueue, make_worker: MakeWorker) -> None:
    status = None
    event = asyncio.Event()

    async def function(_ctx: Any) -> None:
        event.set()
        await asyncio.sleep(float("inf"))

    async def after_process(ctx: Any) -> None:
        nonlocal status
        status = ctx["job"].status

    worker = make_worker([("function", function)], after_process=after_process)
    job = await enqueue(queue, "function")
    task = asyncio.create_task(worker.process())
    await event.wait()
    await job.abort("aborted")
    await worker.abort(0)
    await task
    assert status == Status.ABORTED


async def test_cron(queue: AsyncpgQueue, make_worker: MakeWorker, mock_logger: Any) -> None:
    with pytest.raises(ValueError):
        Worker(queue, functions=FUNCTIONS, cron_jobs=[CronJob(cron, cron="x")])

    worker = make_worker(cron_jobs=[CronJob(cron, cron="* * * * * *")])
    assert await queue.count("queued") == 0
    assert await queue.count("incomplete") == 0
    await worker.schedule()
    assert await queue.count("incomplete") == 1

    async def due() -> bool:
        return await queue.count("queued") == 1

    await wait_until(due, timeout=3)  # SAQ sleeps 1 s
    assert await queue.count("incomplete") == 1


async def test_abort(queue: AsyncpgQueue, make_worker: MakeWorker, mock_logger: Any) -> None:
    aborted = False

    async def takes_time_to_cancel(_ctx: Any, sleep: float, time_to_abort: float) -> None:
        # Takes time_to_abort seconds to abort, but does not defend against a second cancellation.
        try:
            await asyncio.sleep(sleep)
        except asyncio.CancelledError:
            await asyncio.sleep(time_to_abort)
        finally:
            nonlocal aborted
            aborted = True

    worker = make_worker([*FUNCTIONS, ("takes_time_to_cancel", takes_time_to_cancel)])

    async def assert_queues(*, active: int, queued: int, incomplete: int) -> None:
        assert await queue.count("queued") == queued
        assert await queue.count("incomplete") == incomplete
        assert await queue.count("active") == active

    time_to_abort_s = 0.5
    job = await enqueue(queue, "takes_time_to_cancel", sleep=60, time_to_abort=time_to_abort_s)

    seen: list[Status] = []

    def listen_cb(job_key: str, status: Status) -> bool:
        assert job.key == job_key
        seen.append(status)
        return status == Status.ACTIVE

    listen = asyncio.create_task(queue.listen([job.key], listen_cb))
    # The listener has subscribed once it reports the queued job (SAQ sleeps 0 s).
    await wait_until(lambda: seen, what="the listener to report the job")
    process_task = asyncio.create_task(worker.process())
    await listen

    await assert_queues(active=1, incomplete=1, queued=0)
    await job.abort("test")
    await assert_queues(active=0, incomplete=0, queued=0)

    # The job is not requeued.
    await job.enqueue()
    await assert_queues(active=0, incomplete=0, queued=0)

    aborted = False
    start = time.monotonic()
    await worker.abort(0.0001)
    time_to_abort = time.monotonic() - start
    await asyncio.wait_for(process_task, 1)
    assert time_to_abort >= time_to_abort_s
    assert aborted
    mock_logger.info.assert_any_call("Aborting %s", job.id)
    await job.refresh()
    await assert_queues(active=0, incomplete=0, queued=0)
    assert job.status == Status.ABORTED
    assert job.error == "test"

    await job.enqueue()
    await assert_queues(active=0, incomplete=1, queued=1)

    await job.abort("test")
    await assert_queues(active=0, incomplete=0, queued=0)


async def test_sync_function(queue: AsyncpgQueue, worker: Worker) -> None:
    async def before_process(*_: Any, **__: Any) -> None:
        ctx_var.set("123")

    worker.before_process = [before_process]
    task = asyncio.create_task(worker.start())
    assert await queue.apply("sync_echo_ctx") == "123"
    task.cancel()
    await task


async def test_propagation(queue: AsyncpgQueue, worker: Worker) -> None:
    async def before_process(ctx: Any) -> None:
        ctx_var.set(ctx["job"].meta.get("correlation_id"))
        ctx["queue"] = queue

    async def before_enqueue(job: Job) -> None:
        job.meta["correlation_id"] = ctx_var.get(None) or uuid1()

    worker.before_process = [before_process]
    queue.register_before_enqueue(before_enqueue)
    task = asyncio.create_task(worker.start())
    correlation_ids = await queue.apply("recurse", n=2)
    assert len(correlation_ids) == 3
    assert all(cid == correlation_ids[0] for cid in correlation_ids[1:])
    task.cancel()
    await task


async def test_sweep_abort(queue: AsyncpgQueue, make_worker: MakeWorker) -> None:
    state = {"counter": 0, "started": 0, "cancelled": 0}

    async def handler(_ctx: Any) -> None:
        state["started"] += 1
        try:
            await asyncio.sleep(4)
        except asyncio.CancelledError:
            state["cancelled"] += 1
            raise
        state["counter"] += 1

    worker = make_worker([("handler", handler)], timers={"sweep": 1})
    task = asyncio.create_task(worker.start())
    job = await enqueue(queue, "handler", heartbeat=1, retries=2)

    async def every_attempt_swept() -> bool:
        # SAQ sleeps 6 s (longer than the handler) and then counts. Here: wait until the job has ended
        # and every attempt's handler was cancelled, after which none can finish any more.
        await job.refresh()
        return job.status in TERMINAL_STATUSES and state["started"] == state["cancelled"] > 0

    await wait_until(every_attempt_swept, timeout=30, interval=0.1, what="the sweep to abort every attempt")
    assert job.status == Status.ABORTED
    assert state["counter"] == 0
    task.cancel()
    await task


async def test_process_survives_same_key_concurrent_attempts(queue: AsyncpgQueue, worker: Worker) -> None:
    # A sweep can re-enqueue a job whose first attempt is still winding down, so one worker runs two
    # process() calls for one key; the first's cleanup must not remove the second's task context.
    a_entered, b_entered = asyncio.Event(), asyncio.Event()
    a_finish, b_finish = asyncio.Event(), asyncio.Event()
    calls = 0

    async def handler(_ctx: Any) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            a_entered.set()
            await a_finish.wait()
        else:
            b_entered.set()
            await b_finish.wait()
        return 1

    worker.functions["slow_handler"] = handler
    job_a = await enqueue(queue, "slow_handler", key="shared-key")
    job_b = queue.copy(job_a)
    assert job_a == job_b
    assert job_a is not job_b

    dequeue_mock = mock.AsyncMock(side_effect=[job_a, job_b])
    with mock.patch.object(worker.queue, "dequeue", dequeue_mock):
        task_a = asyncio.create_task(worker.process())
        await a_entered.wait()
        task_b = asyncio.create_task(worker.process())
        await b_entered.wait()
        # Finish A first so its cleanup runs before B's completion check.
        a_finish.set()
        await task_a
        b_finish.set()
        await task_b

    assert worker.job_task_contexts == {}
    await job_a.refresh()
    assert job_a.status == Status.COMPLETE


async def test_cron_solo_worker(queue: AsyncpgQueue, make_worker: MakeWorker) -> None:
    state = {"counter": 0}

    async def handler(_ctx: Any) -> None:
        state["counter"] += 1

    worker = make_worker([], cron_jobs=[CronJob(handler, cron="* * * * * */1")], concurrency=1)
    task = asyncio.create_task(worker.start())

    async def ran() -> bool:
        return state["counter"] > 0

    await wait_until(ran, timeout=5)  # SAQ sleeps 2 s
    task.cancel()
    await task


async def test_info(queue: AsyncpgQueue) -> None:
    assert await queue.info()


async def test_burst(queue: AsyncpgQueue, make_worker: MakeWorker) -> None:
    with pytest.raises(ValueError):
        Worker(queue, functions=FUNCTIONS, burst=True)  # burst needs a dequeue_timeout

    await _burst_runs_what_is_queued_then_stops(queue, make_worker, dequeue_timeout=0.1)


async def test_burst_poll_interval(queue: AsyncpgQueue, make_worker: MakeWorker) -> None:
    await _burst_runs_what_is_queued_then_stops(queue, make_worker, dequeue_timeout=0.3, poll_interval=0.1)


async def _burst_runs_what_is_queued_then_stops(
    queue: AsyncpgQueue, make_worker: MakeWorker, **options: float
) -> None:
    worker = make_worker(burst=True, concurrency=1, **options)
    # Enqueued before the worker starts (SAQ's test enqueues after): on a loaded machine a burst worker
    # can find the queue empty for its dequeue_timeout and stop before the jobs arrive.
    job_a = await enqueue(queue, "noop")
    job_b = await enqueue(queue, "noop")
    await asyncio.wait_for(worker.start(), 5)
    assert worker.event.is_set()
    await job_a.refresh()
    await job_b.refresh()
    assert job_a.status == Status.COMPLETE
    assert job_b.status == Status.COMPLETE


async def test_max_burst_jobs(queue: AsyncpgQueue, make_worker: MakeWorker) -> None:
    worker = make_worker(burst=True, max_burst_jobs=1, dequeue_timeout=0.1)
    worker_task = asyncio.create_task(worker.start())
    job_a = await enqueue(queue, "noop")
    job_b = await enqueue(queue, "noop")
    job_c = await enqueue(queue, "noop")
    await asyncio.wait_for(worker_task, 5)
    assert worker.event.is_set()

    await job_a.refresh()
    assert job_a.status == Status.COMPLETE

    # Unlike SAQ's queue, ours may have claimed the next job for the slot while its finish was written;
    # a claim nobody takes goes back within LINGER_S, never started (attempts unchanged).
    async def left_queued() -> bool:
        await job_b.refresh()
        await job_c.refresh()
        return job_b.status == job_c.status == Status.QUEUED

    await wait_until(left_queued, timeout=LINGER_S + 3, what="jobs b and c back in the queue")
    assert (job_b.attempts, job_c.attempts) == (0, 0)


async def test_sync_cancel(queue: AsyncpgQueue, make_worker: MakeWorker) -> None:
    state = {"counter": 0}

    def work(ctx: Any = None) -> None:
        time.sleep(1.5)
        if ctx:
            job = ctx["job"]
            # As SAQ's test does: refresh from the worker thread in a loop of its own. AsyncpgQueue
            # runs a call from another loop on its own loop (its pool belongs there).
            asyncio.run(job.refresh())
            if job.status not in ACTIVE_STATUSES:
                return
        state["counter"] += 1

    def no_cancel(_ctx: Any) -> None:
        work()

    def yes_cancel(ctx: Any) -> None:
        work(ctx)

    worker = make_worker([("no_cancel", no_cancel), ("yes_cancel", yes_cancel)])

    job = await enqueue(queue, "yes_cancel")
    first = asyncio.create_task(worker.process())
    await status_becomes(job, Status.ACTIVE)
    await job_running(worker)
    await job.update(status=Status.ABORTING)
    await worker.abort(0)
    await job.refresh()
    assert job.status == Status.ABORTED
    assert state["counter"] == 0

    job = await enqueue(queue, "no_cancel")
    second = asyncio.create_task(worker.process())
    await status_becomes(job, Status.ACTIVE)
    await job_running(worker)
    await job.update(status=Status.ABORTING)
    await worker.abort(0)
    await job.refresh()
    assert job.status == Status.ABORTED
    await asyncio.gather(first, second)

    async def counted() -> bool:
        return state["counter"] == 1

    await wait_until(counted, timeout=5)


async def test_worker_id(queue: AsyncpgQueue, worker: Worker, mock_logger: Any) -> None:
    task = asyncio.create_task(worker.start())
    job = await enqueue(queue, "sleeper", sleep=60)
    await status_becomes(job, Status.ACTIVE)

    async def has_worker_id() -> bool:
        await job.refresh()
        return job.worker_id is not None

    # SAQ waits 5 s; the id is stored with the job's start.
    await wait_until(has_worker_id, timeout=5)
    assert job.status == Status.ACTIVE
    assert worker.id == job.worker_id
    task.cancel()
    await task
