"""Fixtures for the CLI tests: environments for the test apps, CLI processes that are always cleaned
up, and the test's Redis queue."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from litestar_saq.backends.redis import RedisQueue
from tests.cli.procs import CliProcess, kill_session, start_cli

WORKERS_APP = "tests.cli.apps.workers_app:app"


@pytest.fixture
def app_env(queue_name: str, redis_url: str) -> dict[str, str]:
    """Environment for ``tests.cli.apps.workers_app`` with this test's queue."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TEST_", "LITESTAR_"))}
    env.update(
        TEST_QUEUE=queue_name,
        REDIS_URL=redis_url,
        PYTHONUNBUFFERED="1",
        PYTHONFAULTHANDLER="1",
        LITESTAR_QUIET_CONSOLE="1",
    )
    return env


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Callable[..., CliProcess]]:
    """Start CLI processes; any still running (with their children) are killed when the test ends."""
    started: list[CliProcess] = []

    def start(args: list[str], env: dict[str, str], app: str = WORKERS_APP) -> CliProcess:
        process = start_cli(app, args, env, tmp_path / f"cli-{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        kill_session(process)


@pytest.fixture
async def redis_queue(queue_name: str, redis_url: str) -> AsyncIterator[RedisQueue]:
    """The test's queue, connected; its keys are deleted afterwards."""
    queue = RedisQueue.from_url(redis_url, name=queue_name)
    await queue.connect()
    yield queue
    keys = [key async for key in queue.redis.scan_iter(match=f"saq:*{queue_name}*")]
    if keys:
        await queue.redis.delete(*keys)
    await queue.disconnect()
