"""SAQ 0.26.4's ``tests/test_queue.py`` (``TestQueue`` and ``TestPostgresQueue``), run on ``AsyncpgQueue``.

Rewritten as pytest functions; the assertions are SAQ's. Fixed sleeps that waited for time to pass
became polls with a deadline.

Left out:
- ``TestQueueError``, ``test_job_key`` and the base ``test_schedule``: Redis-only (SAQ skips the last two
  for Postgres, whose ``schedule()`` returns ``[]``).
- ``test_repeated_connect_disconnect`` as written: it swaps in a mock psycopg pool and patches
  ``init_db``; ported below as the same check against a real pool.
- ``test_sweep_stats``, ``test_load_dump_pickle`` and the ``test_finish_ttl_*`` tests read the tables
  through a psycopg cursor; ported with asyncpg queries on the queue's pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
from collections.abc import Awaitable, Callable
from typing import Any
from unittest import mock

import pytest
from saq import Worker
from saq.job import Job, Status
from saq.queue import JobError
from saq.utils import uuid1

from litestar_saq.backends.asyncpg import AsyncpgQueue
from litestar_saq.backends.asyncpg_fetcher import LINGER_S
from tests.brokers.saq_suite.functions import echo, error
from tests.support.brokers import dequeue_waiters
from tests.support.poll import wait_until

CreateQueue = Callable[..., Awaitable[AsyncpgQueue]]
FUNCTIONS = [echo, error]


async def enqueue(queue: AsyncpgQueue, job: Job | str, **kwargs: Any) -> Job:
    enqueued = await queue.enqueue(job, **kwargs)
    assert enqueued is not None
    return enqueued


async def dequeue(queue: AsyncpgQueue, **kwargs: Any) -> Job:
    dequeued = await queue.dequeue(**kwargs)
    assert dequeued is not None
    return dequeued


@pytest.fixture
def mock_time() -> Any:
    with mock.patch("saq.utils.time") as patched:
        yield patched


async def test_enqueue_job(queue: AsyncpgQueue) -> None:
    job = Job("test")
    assert await enqueue(queue, job) == await queue.job(job.key)
    assert await queue.count("queued") == 1
    await queue.enqueue(job)
    assert await queue.count("queued") == 1
    await enqueue(queue, Job("test"))
    assert await queue.count("queued") == 2


async def test_enqueue_job_str(queue: AsyncpgQueue) -> None:
    job = await enqueue(queue, "test")
    assert job is not None
    assert await queue.job(job.key) == job
    job = await enqueue(queue, "test", y=1, timeout=1)
    assert job.kwargs == {"y": 1}
    assert job.timeout == 1
    assert job.heartbeat == 0


async def test_enqueue_dup(queue: AsyncpgQueue) -> None:
    job = await enqueue(queue, "test", key="1")
    assert job.id == "1"
    assert await queue.enqueue("test", key="1") is None
    assert await queue.enqueue(job) is None


async def test_dequeue(queue: AsyncpgQueue) -> None:
    job = await enqueue(queue, "test")
    assert await queue.count("queued") == 1
    assert await queue.count("incomplete") == 1
    assert await queue.count("active") == 0
    assert job == await dequeue(queue)
    assert await queue.count("queued") == 0
    assert await queue.count("incomplete") == 1
    assert await queue.count("active") == 1

    with dequeue_waiters(queue) as waiters:
        task = asyncio.create_task(dequeue(queue))
        await wait_until(waiters, what="the dequeue to wait for a job")  # SAQ sleeps 0.1 s
    await enqueue(queue, "test")
    await task
    assert await queue.count("queued") == 0


async def test_dequeue_fifo(queue: AsyncpgQueue) -> None:
    job = await enqueue(queue, "test")
    job_second = await enqueue(queue, "test_second")
    assert await queue.count("queued") == 2
    assert await queue.count("incomplete") == 2
    assert await queue.count("active") == 0
    assert job == await dequeue(queue)
    assert await queue.count("queued") == 1
    assert await queue.count("incomplete") == 2
    assert await queue.count("active") == 1

    await enqueue(queue, "test")
    assert await queue.count("queued") == 2
    assert job_second == await dequeue(queue)
    assert await queue.count("queued") == 1
    assert await queue.count("incomplete") == 3
    assert await queue.count("active") == 2
    task = asyncio.create_task(dequeue(queue))
    assert await queue.count("queued") == 1
    assert await queue.count("incomplete") == 3

    async def third_active() -> bool:
        return await queue.count("active") == 3

    await wait_until(third_active)  # SAQ sleeps 0.05 s
    await task
    assert await queue.count("incomplete") == 3
    assert await queue.count("queued") == 0


async def test_dequeue_timeout(queue: AsyncpgQueue) -> None:
    assert await queue.dequeue(timeout=1) is None
    assert await queue.count("queued") == 0
    assert await queue.count("incomplete") == 0
    assert await queue.count("active") == 0


async def test_finish(queue: AsyncpgQueue) -> None:
    job = await enqueue(queue, "test")
    await dequeue(queue)
    assert (await queue.count("queued"), await queue.count("incomplete"), await queue.count("active")) == (
        0,
        1,
        1,
    )
    await queue.finish(job, Status.COMPLETE, result=1)
    assert job.status == Status.COMPLETE
    assert job.result == 1
    assert (await queue.count("queued"), await queue.count("incomplete"), await queue.count("active")) == (
        0,
        0,
        0,
    )


async def test_retry(queue: AsyncpgQueue) -> None:
    job = await enqueue(queue, "test", retries=2)
    await dequeue(queue)
    assert (await queue.count("queued"), await queue.count("incomplete"), await queue.count("active")) == (
        0,
        1,
        1,
    )
    assert queue.retried == 0
    await queue.retry(job, None)
    assert queue.retried == 1
    assert (await queue.count("queued"), await queue.count("incomplete"), await queue.count("active")) == (
        1,
        1,
        0,
    )


async def test_retry_delay(queue: AsyncpgQueue, make_worker: Callable[..., Worker]) -> None:
    # Without a retry delay first.
    worker = make_worker(FUNCTIONS, dequeue_timeout=0.1)
    job = await enqueue(queue, "error", retries=2)
    await worker.process()
    await job.refresh()
    assert job.status == Status.QUEUED
    await worker.process()
    await job.refresh()
    assert job.status == Status.FAILED

    # Now with the delay.
    job = await enqueue(queue, "error", retries=2, retry_delay=100.0)
    await worker.process()
    await job.refresh()
    assert job.status == Status.QUEUED
    await worker.process()
    await job.refresh()
    assert job.status == Status.QUEUED


async def test_stats(queue: AsyncpgQueue, make_worker: Callable[..., Worker]) -> None:
    worker = make_worker(FUNCTIONS)
    for _ in range(10):
        await enqueue(queue, "test")
        job = await dequeue(queue)
        await job.retry(None)
        await job.finish(Status.ABORTED)
        await job.finish(Status.FAILED)
        await job.finish(Status.COMPLETE)
    worker_info = await worker.worker_info()
    assert worker_info["stats"]["complete"] == 10
    assert worker_info["stats"]["failed"] == 10
    assert worker_info["stats"]["retried"] == 10
    assert worker_info["stats"]["aborted"] == 10
    assert worker_info["stats"]["uptime"] > 0


async def test_info(
    queue: AsyncpgQueue, create_queue: CreateQueue, make_worker: Callable[..., Worker]
) -> None:
    queue2 = await create_queue(name=queue.name)
    worker = make_worker(FUNCTIONS, metadata={"foo": "bar"})
    info = await queue.info(jobs=True)
    assert info["workers"] == {}
    assert (info["active"], info["queued"], info["scheduled"], info["jobs"]) == (0, 0, 0, [])

    await enqueue(queue, "echo", a=1)
    await queue2.enqueue("echo", a=1)
    await worker.process()
    await worker.worker_info(3)

    # The second job may be claimed for the worker's next round while the first one's finish was
    # written; nobody takes it (process() ran once), so it goes back within LINGER_S.
    info = await wait_until(
        lambda: _with_one_queued(queue), timeout=LINGER_S + 3, what="one job queued, none active"
    )
    assert set(info["workers"].keys()) == {worker.id}
    assert info["workers"][worker.id]["metadata"] == {"foo": "bar"}
    assert info["workers"][worker.id]["queue_key"] == queue.name
    assert info["workers"][worker.id]["stats"] is not None
    assert info["active"] == 0
    assert info["queued"] == 1
    assert len(info["jobs"]) == 1

    async def expired() -> bool:
        return (await queue.info(jobs=True))["workers"] == {}

    # SAQ sleeps 4 s for the 3 s TTL; wait for it instead.
    await wait_until(expired, timeout=6, interval=0.2)
    await worker.queue.sweep()
    assert (await queue.info(jobs=True))["workers"] == {}


async def _with_one_queued(queue: AsyncpgQueue) -> dict[str, Any] | None:
    info = await queue.info(jobs=True)
    return info if (info["active"], info["queued"]) == (0, 1) else None


async def test_update(queue: AsyncpgQueue) -> None:
    job = await enqueue(queue, "test")
    counter = {"x": 0}

    def listen(job_key: str, status: Status) -> bool:
        assert job.key == job_key
        assert status == Status.QUEUED
        counter["x"] += 1
        return counter["x"] == 2

    task = asyncio.create_task(queue.listen([job.key], listen, timeout=1))
    # The listener has subscribed once it reports the job's first status (SAQ sleeps 0.1 s).
    await wait_until(lambda: counter["x"] >= 1, what="the listener to report the job")
    await queue.update(job)
    assert job.status == Status.QUEUED
    job.status = Status.ACTIVE
    await queue.update(job)
    # The job doesn't mutate; the stored status stays queued.
    assert job.status == Status.ACTIVE
    stored = await queue.job(job.key)
    assert stored is not None and stored.status == Status.QUEUED
    await task
    assert counter["x"] == 2


async def test_apply(queue: AsyncpgQueue, make_worker: Callable[..., Worker]) -> None:
    worker = make_worker(FUNCTIONS)
    task = asyncio.create_task(worker.start())
    assert await queue.apply("echo", a=1, ttl=-1) is None
    assert await queue.apply("echo", a=1) == 1
    with pytest.raises(JobError):
        await queue.apply("error")
    task.cancel()
    await task


async def test_map(queue: AsyncpgQueue, make_worker: Callable[..., Worker]) -> None:
    worker = make_worker(FUNCTIONS)
    task = asyncio.create_task(worker.start())
    assert await queue.map("echo", []) == []
    assert await queue.map("echo", [{"a": 1}]) == [1]
    assert await queue.map("echo", [{"a": 1}, {"a": 2}]) == [1, 2]
    assert await queue.map("echo", [{}, {"a": 2}], timeout=10, a=3) == [3, 2]
    with pytest.raises(JobError):
        await queue.map("error", [{}, {}])
    results = await queue.map("error", [{}, {}], return_exceptions=True)
    assert all(isinstance(result, JobError) for result in results)

    task.cancel()
    await task

    # map() with the key of a job still queued waits for that job. SAQ enqueues it with the worker
    # running, which races the worker (a finished job's key may be enqueued again); here the worker
    # starts only once map() has tried to enqueue.
    key = uuid1()
    await enqueue(queue, "echo", key=key, a=3)
    refused = asyncio.Event()
    enqueue_job = queue._enqueue

    async def spy(job: Job) -> Job | None:
        result = await enqueue_job(job)
        refused.set()
        return result

    with mock.patch.object(queue, "_enqueue", spy):
        mapped = asyncio.create_task(queue.map("echo", [{"a": 1, "key": key}]))
        await refused.wait()
    task = asyncio.create_task(make_worker(FUNCTIONS).start())
    assert await mapped == [3]
    task.cancel()
    await task


async def test_map_timeout(queue: AsyncpgQueue) -> None:
    with pytest.raises((asyncio.CancelledError, asyncio.TimeoutError)):
        await queue.map("echo", [{}], timeout=0.1)


async def test_poll_interval(queue: AsyncpgQueue) -> None:
    job = Job(function="echo", kwargs={"a": 42}, key="poll-test", queue=queue)
    # Like SAQ, patch asyncio.sleep to check that apply() polls with the given interval.
    with mock.patch("asyncio.sleep") as mock_sleep:
        call_count = 0

        async def sleep_side_effect(_delay: float) -> None:
            nonlocal call_count
            call_count += 1
            if call_count == 2:
                await queue.finish(job, Status.COMPLETE, result=42)

        mock_sleep.side_effect = sleep_side_effect
        assert await queue.apply(job, poll_interval=0.123) == 42
        assert mock_sleep.call_count >= 2
        mock_sleep.assert_called_with(0.123)


async def test_batch(queue: AsyncpgQueue) -> None:
    with contextlib.suppress(ValueError):
        async with queue.batch():
            job = await enqueue(queue, "echo", a=1)
            raise ValueError()
    assert job.status == Status.ABORTED


async def test_before_enqueue(queue: AsyncpgQueue) -> None:
    called_with_job = None

    async def callback(job: Job) -> None:
        nonlocal called_with_job
        called_with_job = job

    queue.register_before_enqueue(callback)
    await enqueue(queue, "test")
    assert called_with_job is not None

    called_with_job = None
    queue.unregister_before_enqueue(callback)
    await enqueue(queue, "test")
    assert called_with_job is None


async def test_iter_jobs(queue: AsyncpgQueue) -> None:
    for _ in range(9):
        await queue.enqueue("test")
    async for job in queue.iter_jobs(batch_size=1):
        await job.update(status=Status.ACTIVE)
        break
    assert len([job async for job in queue.iter_jobs()]) == 9
    for batch_size in (1, 2, 3):
        assert len([job async for job in queue.iter_jobs(batch_size=batch_size)]) == 9
    assert len([job async for job in queue.iter_jobs(statuses=[Status.ACTIVE])]) == 1


async def test_update_refresh(queue: AsyncpgQueue) -> None:
    # A refresh running alongside an update must not undo the update.
    job = await enqueue(queue, "test")
    assert job.touched == 0
    refresh = asyncio.create_task(job.refresh())
    await job.update()
    stored = await queue.job(job.key)
    assert stored is not None and stored.touched > 0
    await refresh


# -- TestPostgresQueue ---------------------------------------------------------------------------


async def test_abort(queue: AsyncpgQueue) -> None:
    job = await enqueue(queue, "test", retries=2)
    assert (await queue.count("queued"), await queue.count("incomplete")) == (1, 1)
    await queue.abort(job, "test")
    assert (await queue.count("queued"), await queue.count("incomplete")) == (0, 0)
    await job.refresh()
    assert job.status == Status.ABORTED
    assert await queue.get_job_status(job.key) == Status.ABORTED

    job = await enqueue(queue, "test", retries=2)
    await dequeue(queue)
    assert (await queue.count("queued"), await queue.count("incomplete"), await queue.count("active")) == (
        0,
        1,
        1,
    )
    await queue.abort(job, "test")
    assert (await queue.count("queued"), await queue.count("incomplete"), await queue.count("active")) == (
        0,
        0,
        0,
    )
    assert await queue.get_job_status(job.key) == Status.ABORTING


async def test_sweep(queue: AsyncpgQueue, mock_time: Any) -> None:
    mock_time.time.return_value = 1
    job1 = await enqueue(queue, "test", heartbeat=1, retries=0)
    job2 = await enqueue(queue, "test", timeout=1)
    await enqueue(queue, "test", timeout=2)
    await enqueue(queue, "test", heartbeat=2)
    job3 = await enqueue(queue, "test", timeout=1)
    for _ in range(4):
        job = await dequeue(queue)
        job.started = 1000
        await queue.update(job, status=Status.ACTIVE)

    # job3 has been dequeued but the job state hasn't been updated
    await dequeue(queue)

    mock_time.time.return_value = 3
    assert await queue.count("active") == 5
    swept = await queue.sweep(abort=0.01)
    assert set(swept) == {job1.key, job2.key, job3.key}
    await job1.refresh()
    await job2.refresh()
    await job3.refresh()
    assert job1.status == Status.ABORTED
    assert job1.error == "swept"
    assert job2.status == Status.QUEUED
    assert job3.status == Status.QUEUED
    assert await queue.count("active") == 2


async def test_sweep_jobs(queue: AsyncpgQueue) -> None:
    job1 = await enqueue(queue, "test", ttl=1)
    job2 = await enqueue(queue, "test", ttl=60)
    await queue.finish(job1, Status.COMPLETE)
    await queue.finish(job2, Status.COMPLETE)

    async def swept() -> bool:
        await queue.sweep()
        return await queue.job(job1.key) is None

    await wait_until(swept, timeout=5, interval=0.2)  # SAQ sleeps 1.5 s
    with pytest.raises(RuntimeError, match="doesn't exist"):
        await job1.refresh()
    await job2.refresh()
    assert job2.status == Status.COMPLETE


async def test_sweep_stats(queue: AsyncpgQueue, make_worker: Callable[..., Worker]) -> None:
    worker = make_worker(FUNCTIONS)
    query = 'SELECT stats FROM "saq_stats" WHERE worker_id = $1'
    # Stats are deleted.
    await worker.worker_info(ttl=1)

    async def deleted() -> bool:
        await queue.sweep()
        return await queue.pool.fetchrow(query, worker.id) is None

    await wait_until(deleted, timeout=5, interval=0.2)

    # Stats are not deleted.
    await worker.worker_info(ttl=60)
    await asyncio.sleep(1)  # time must pass for the check to mean anything
    await queue.sweep()
    assert await queue.pool.fetchrow(query, worker.id) is not None


async def test_load_dump_pickle(create_queue: CreateQueue) -> None:
    queue = await create_queue(dump=pickle.dumps, load=pickle.loads)
    job = await enqueue(queue, "test")
    stored = await queue.pool.fetchval('SELECT job FROM "saq_jobs" WHERE key = $1', job.key)
    fetched_job = pickle.loads(stored)
    assert isinstance(fetched_job, dict)
    assert fetched_job["key"] == job.key
    assert await dequeue(queue) == job


async def stored_expire_at(queue: AsyncpgQueue, key: str) -> Any:
    return await queue.pool.fetchrow('SELECT expire_at FROM "saq_jobs" WHERE key = $1', key)


async def test_finish_ttl_positive(queue: AsyncpgQueue, mock_time: Any) -> None:
    mock_time.time.return_value = 0
    job = await enqueue(queue, "test", ttl=5)
    await dequeue(queue)
    await queue.finish(job, Status.COMPLETE)
    assert tuple(await stored_expire_at(queue, job.key)) == (5,)


async def test_finish_ttl_neutral(queue: AsyncpgQueue, mock_time: Any) -> None:
    mock_time.time.return_value = 0
    job = await enqueue(queue, "test", ttl=0)
    await dequeue(queue)
    await queue.finish(job, Status.COMPLETE)
    assert tuple(await stored_expire_at(queue, job.key)) == (None,)


async def test_finish_ttl_negative(queue: AsyncpgQueue, mock_time: Any) -> None:
    mock_time.time.return_value = 0
    job = await enqueue(queue, "test", ttl=-1)
    await dequeue(queue)
    await queue.finish(job, Status.COMPLETE)
    assert await stored_expire_at(queue, job.key) is None


async def test_cron_job_close_to_target(queue: AsyncpgQueue, mock_time: Any) -> None:
    mock_time.time.return_value = 1000.5
    await enqueue(queue, "test", scheduled=1001)
    # Scheduled at 1001 and it is 1000.5: not due yet.
    assert not await queue.dequeue(timeout=1)


async def test_group_key(queue: AsyncpgQueue) -> None:
    job1 = await enqueue(queue, "test", group_key=1)
    await enqueue(queue, "test", group_key=1)
    assert await queue.count("queued") == 2
    assert await dequeue(queue)
    assert await queue.count("queued") == 1
    assert not await queue.dequeue(0.01)
    await job1.update(status=Status.COMPLETE)
    assert await dequeue(queue)


async def test_priority(queue: AsyncpgQueue) -> None:
    assert await enqueue(queue, "test", priority=-1)
    assert await queue.count("queued") == 1
    assert not await queue.dequeue(0.01)


async def test_repeated_connect_disconnect(schema_url: str, queue_name: str, lock_keyspace: int) -> None:
    queue = AsyncpgQueue.from_url(schema_url, name=queue_name, min_size=1, saq_lock_keyspace=lock_keyspace)
    await queue.connect()
    pool = queue.pool
    await queue.connect()
    assert queue.pool is pool
    await queue.disconnect()
    await queue.disconnect()
    assert queue.pool is None
    assert pool.is_closing()


async def test_lock_skip(queue: AsyncpgQueue, create_queue: CreateQueue) -> None:
    await queue.enqueue("test")
    job = await dequeue(queue)
    await queue.retry(job, "")

    queue2 = await create_queue()
    await queue2.enqueue("test")
    job2 = await dequeue(queue2)
    assert job2.key == job.key


async def test_dequeue_sweep(queue: AsyncpgQueue) -> None:
    await queue.enqueue("test")
    await queue.dequeue()
    assert await queue.sweep() == []


async def test_sweep_lock(queue: AsyncpgQueue, create_queue: CreateQueue, mock_time: Any) -> None:
    mock_time.time.return_value = 1
    job = await enqueue(queue, "test", timeout=1, retries=0)
    await queue.dequeue()
    mock_time.time.return_value = 3
    assert await queue.sweep(abort=0.01) == [job.key]

    queue2 = await create_queue()
    job = await enqueue(queue2, "test", timeout=1, retries=0)
    await queue2.dequeue()
    mock_time.time.return_value = 5
    assert await queue2.sweep(abort=0.01) == []
    assert await queue.sweep(abort=0.01) == [job.key]
