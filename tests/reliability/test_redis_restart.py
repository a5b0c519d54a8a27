"""Workers ride out a Redis restart: they reconnect, nothing crashes, later jobs run, no busy loop."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from saq.job import Status

from litestar_saq import QueueConfig
from litestar_saq.backends.redis import RedisQueue
from litestar_saq.worker_group import build_worker
from tests.support.poll import wait_until
from tests.support.redis_server import PrivateRedis


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


async def echo(ctx: dict[str, Any], *, value: int) -> int:
    return value


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "busy"])
async def test_worker_survives_redis_restart(private_redis: PrivateRedis, busy: bool) -> None:
    queue = RedisQueue.from_url(private_redis.url, name="restart", socket_timeout=1)
    await queue.connect()
    config = QueueConfig(name="restart", dsn=private_redis.url, tasks=[echo], concurrency=4)
    worker = build_worker(config, queue, Litestar(logging_config=None))
    running = asyncio.create_task(worker.start())
    unhandled: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: unhandled.append(context))
    try:
        before = await queue.enqueue("echo", value=1)
        assert before is not None
        await wait_until(lambda: _has_status(queue, before.key, Status.COMPLETE))
        if busy:
            for value in range(20):
                await queue.enqueue("echo", value=value)

        private_redis.stop()
        cpu_before = cpu_seconds()
        await asyncio.sleep(2)  # the outage itself: workers must wait for Redis without spinning
        cpu_during_outage = cpu_seconds() - cpu_before
        private_redis.start()

        after = await wait_until(lambda: _enqueue_when_possible(queue), timeout=15)
        finished = await wait_until(lambda: _has_status(queue, after.key, Status.COMPLETE), timeout=15)
        assert finished.result == 99
        assert not running.done(), "the worker stopped during the outage"
        assert cpu_during_outage < 0.5, (
            f"workers spun during the outage: {cpu_during_outage:.2f} s CPU in 2 s"
        )
        gc.collect()  # unretrieved task exceptions are reported when the task is collected
        assert [context.get("message") for context in unhandled] == []
    finally:
        await worker.stop()
        await running
        await queue.disconnect()


async def _enqueue_when_possible(queue: RedisQueue) -> Any:
    try:
        return await queue.enqueue("echo", value=99)
    except Exception:
        return None


async def _has_status(queue: RedisQueue, key: str, status: Status) -> Any:
    job = await queue.job(key)
    return job if job is not None and job.status == status else None
