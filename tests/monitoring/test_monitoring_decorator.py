"""``monitored_job`` without a broker: the wrapper's shape, intervals, and heartbeats on MemoryQueue."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from saq import Worker
from saq.job import Job, Status

from litestar_saq.backends.memory import MemoryQueue
from litestar_saq.monitoring import (
    DEFAULT_INTERVAL_WITHOUT_HEARTBEAT,
    heartbeat_interval,
    monitored_job,
    touch_job,
)
from tests.support.poll import wait_until


async def plain_task(ctx: dict[str, Any], *, value: int) -> int:
    """Docstring kept."""
    return value


def heartbeat_tasks() -> list[asyncio.Task[Any]]:
    return [task for task in asyncio.all_tasks() if task.get_name().startswith("saq-heartbeat-")]


@asynccontextmanager
async def memory_worker(functions: list[Any], **options: Any) -> AsyncIterator[MemoryQueue]:
    queue = MemoryQueue(name="monitoring")
    await queue.connect()
    worker: Worker[Any] = Worker(queue, functions, timers={"abort": 0.05}, **options)  # type: ignore[typeddict-item]
    worker.SIGNALS = []
    run = asyncio.create_task(worker.start())
    try:
        yield queue
    finally:
        await wait_until(lambda: hasattr(worker, "event"))
        await worker.stop()
        await run
        await queue.disconnect()


def test_wrapper_keeps_name_signature_and_coroutine_nature() -> None:
    for decorated in (
        monitored_job(plain_task),
        monitored_job()(plain_task),
        monitored_job(interval=None)(plain_task),
        monitored_job(interval=3)(plain_task),
        monitored_job(2.5)(plain_task),
    ):
        assert decorated.__qualname__ == plain_task.__qualname__
        assert decorated.__name__ == "plain_task"
        assert decorated.__doc__ == "Docstring kept."
        assert inspect.signature(decorated) == inspect.signature(plain_task)
        assert inspect.iscoroutinefunction(decorated)


def test_rejects_sync_functions_and_bad_intervals() -> None:
    def sync_task(ctx: dict[str, Any]) -> None: ...

    with pytest.raises(TypeError, match="async def"):
        monitored_job(sync_task)
    for bad_interval in (0, -1.0):
        with pytest.raises(TypeError, match="interval"):
            monitored_job(interval=bad_interval)


@pytest.mark.parametrize(
    ("heartbeat", "interval", "expected"),
    [
        (2, None, 1.0),
        (1, None, 1.0),
        (30, None, 15.0),
        (0, None, DEFAULT_INTERVAL_WITHOUT_HEARTBEAT),
        (10, 0.5, 0.5),
    ],
)
def test_default_interval_is_half_the_heartbeat_at_least_one_second(
    heartbeat: int, interval: float | None, expected: float
) -> None:
    assert heartbeat_interval(Job("task", heartbeat=heartbeat), interval) == expected


def test_a_too_long_explicit_interval_warns(caplog: pytest.LogCaptureFixture) -> None:
    heartbeat_interval(Job("task", key="k1", heartbeat=2), 5)
    assert "may be swept" in caplog.text


async def test_called_outside_a_worker_it_just_runs() -> None:
    assert await monitored_job(plain_task)({}, value=3) == 3
    assert await monitored_job(plain_task)(ctx={"job": None}, value=4) == 4
    assert not heartbeat_tasks()


async def test_ctx_keyword_only_and_positional_both_run_under_saq() -> None:
    @monitored_job(interval=0.05)
    async def keyword_ctx(*, ctx: dict[str, Any], value: int) -> str:
        return f"{ctx['job'].key}:{value}"

    @monitored_job(interval=0.05)
    async def positional_ctx(ctx: dict[str, Any], value: int) -> str:
        return f"{ctx['job'].key}:{value}"

    async with memory_worker([("keyword_ctx", keyword_ctx), ("positional_ctx", positional_ctx)]) as queue:
        for function in ("keyword_ctx", "positional_ctx"):
            job = await queue.enqueue(function, key=f"k-{function}", value=5)
            assert job is not None
            await job.refresh(until_complete=5)
            assert job.status == Status.COMPLETE, job.error
            assert job.result == f"k-{function}:5"


async def test_heartbeats_touch_the_job_while_it_runs_and_stop_when_it_ends() -> None:
    release = asyncio.Event()

    @monitored_job(interval=0.05)
    async def long_job(ctx: dict[str, Any]) -> str:
        await release.wait()
        return "done"

    async with memory_worker([("long_job", long_job)]) as queue:
        job = await queue.enqueue("long_job", heartbeat=60, timeout=0)
        assert job is not None
        first = await wait_until(lambda: _stored_touched(queue, job.key))

        async def touched_again() -> bool:
            return (await _stored_touched(queue, job.key) or 0) > first

        await wait_until(touched_again)
        assert len(heartbeat_tasks()) == 1
        release.set()
        await job.refresh(until_complete=5)
        assert job.status == Status.COMPLETE
        await wait_until(lambda: not heartbeat_tasks())
        stored = await queue.job(job.key)
        assert stored is not None and stored.status == Status.COMPLETE


async def test_abort_ends_the_job_and_its_heartbeats_and_keeps_the_reason() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    @monitored_job(interval=0.01)
    async def endless(ctx: dict[str, Any]) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with memory_worker([("endless", endless)]) as queue:
        job = await queue.enqueue("endless", heartbeat=60, timeout=0)
        assert job is not None
        await asyncio.wait_for(started.wait(), 5)
        await queue.abort(job, "user said stop")
        await job.refresh(until_complete=5)
        assert job.status == Status.ABORTED
        assert job.error == "user said stop"
        assert cancelled.is_set()
        await wait_until(lambda: not heartbeat_tasks())


async def test_touch_job_refuses_a_job_that_is_not_this_active_attempt() -> None:
    queue = MemoryQueue(name="touch")
    await queue.connect()
    try:
        job = await queue.enqueue("task", heartbeat=10)
        assert job is not None
        assert await touch_job(queue, job, (job.attempts, job.started)) is False  # still queued
    finally:
        await queue.disconnect()


async def _stored_touched(queue: MemoryQueue, key: str) -> int | None:
    stored = await queue.job(key)
    if stored is None or stored.status != Status.ACTIVE:
        return None
    return stored.touched
