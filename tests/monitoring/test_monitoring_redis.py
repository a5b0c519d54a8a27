"""``monitored_job`` on a real Redis: long jobs survive a busy sweep, and heartbeats never undo aborts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
from litestar import Litestar
from saq.job import Status

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin
from litestar_saq.backends.redis import RedisQueue
from litestar_saq.monitoring import monitored_job, touch_job
from litestar_saq.testing import running_app, wait_for_job
from tests.support.poll import wait_until

pytestmark = pytest.mark.asyncio

LONG_JOB_SECONDS = 6


async def sleep_unmonitored(ctx: dict[str, Any], *, seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "done"


@monitored_job()
async def sleep_monitored(ctx: dict[str, Any], *, seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "done"


@monitored_job(interval=0.01)
async def sleep_beating_fast(ctx: dict[str, Any], *, seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "done"


def make_app(queue_name: str, redis_url: str) -> Litestar:
    queue_config = QueueConfig(
        name=queue_name,
        dsn=redis_url,
        tasks=[sleep_unmonitored, sleep_monitored, sleep_beating_fast],
        separate_process=False,
        # The sweep runs every second, so a job that misses its heartbeat is caught at once.
        timers={"sweep": 1},
        shutdown_grace_period_s=0,
    )
    return Litestar(plugins=[SAQPlugin(SAQConfig(queue_configs=[queue_config], enable_otel=False))])


async def test_monitored_long_job_is_never_swept(
    redis_url: str, queue_name: str, redis_queue: RedisQueue
) -> None:
    app = make_app(queue_name, redis_url)
    async with running_app(app):
        job = await redis_queue.enqueue(
            "sleep_monitored", seconds=LONG_JOB_SECONDS, heartbeat=2, timeout=60, retries=3
        )
        assert job is not None
        touched: set[int] = set()

        async def touched_three_times() -> bool:
            stored = await redis_queue.job(job.key)
            if stored is not None and stored.status == Status.ACTIVE:
                touched.add(stored.touched)
            return len(touched) >= 3

        await wait_until(touched_three_times, timeout=LONG_JOB_SECONDS)
        done = await wait_for_job(redis_queue, None, job.key, timeout=LONG_JOB_SECONDS + 10)
    assert done.status == Status.COMPLETE, done.error
    assert done.attempts == 1
    assert done.error is None
    assert done.result == "done"


async def test_the_same_job_without_the_decorator_is_swept(
    redis_url: str, queue_name: str, redis_queue: RedisQueue
) -> None:
    app = make_app(queue_name, redis_url)
    async with running_app(app):
        job = await redis_queue.enqueue(
            "sleep_unmonitored", seconds=LONG_JOB_SECONDS, heartbeat=2, timeout=60, retries=1
        )
        assert job is not None
        done = await wait_for_job(redis_queue, None, job.key, timeout=LONG_JOB_SECONDS + 10)
    assert done.status == Status.ABORTED
    assert done.error == redis_queue.swept_error_message


async def test_abort_while_heartbeats_run_keeps_the_abort_and_its_reason(
    redis_url: str, queue_name: str, redis_queue: RedisQueue
) -> None:
    app = make_app(queue_name, redis_url)
    async with running_app(app):
        job = await redis_queue.enqueue("sleep_beating_fast", seconds=60, heartbeat=60, timeout=0)
        assert job is not None

        async def beating() -> bool:
            stored = await redis_queue.job(job.key)
            return stored is not None and stored.status == Status.ACTIVE and stored.touched > stored.started

        await wait_until(beating)
        await redis_queue.abort(job, "stopped by the user")
        done = await wait_for_job(redis_queue, None, job.key, timeout=10)
    assert done.status == Status.ABORTED
    assert done.error == "stopped by the user"


async def test_heartbeat_racing_with_an_abort_loses_and_stops(
    redis_url: str, queue_name: str, redis_queue: RedisQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An abort written between the heartbeat's read and its write wins; the heartbeat then stops."""
    job = await redis_queue.enqueue("sleep_monitored", seconds=1, heartbeat=10)
    assert job is not None
    job.status, job.attempts, job.started = Status.ACTIVE, 1, 1_000
    await job.update(status=Status.ACTIVE)
    aborting = redis_queue.copy(job)
    aborting.status, aborting.error = Status.ABORTING, "aborted meanwhile"
    other_client = redis.Redis.from_url(redis_url)
    original_deserialize = redis_queue.deserialize
    raced = []

    def deserialize_then_abort(payload: Any, status: Any = None) -> Any:
        decoded = original_deserialize(payload, status)
        if not raced:
            # Another process aborts the job right after the heartbeat read it.
            other_client.set(job.id, redis_queue.serialize(aborting))
            raced.append(True)
        return decoded

    monkeypatch.setattr(redis_queue, "deserialize", deserialize_then_abort)
    try:
        assert await touch_job(redis_queue, job, (1, 1_000)) is False
        assert raced
    finally:
        other_client.close()
    monkeypatch.undo()
    stored = await redis_queue.job(job.key)
    assert stored is not None
    assert (stored.status, stored.error) == (Status.ABORTING, "aborted meanwhile")
