"""Handles and dependency injection with ``litestar workers run --process``: the web process enqueues through
a handle, a supervised child process runs the job with its own app state and providers (Redis, PostgreSQL)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from litestar_saq.testing import running_app, wait_for_job
from tests.support.brokers import DATABASE_URL, QUEUE_PURGES, REDIS_URL
from tests.support.poll import wait_until
from tests.support.procs import CliProcess, kill_session, start_cli
from tests.tasks.apps import tasks_app

APP = "tests.tasks.apps.tasks_app:app"


@pytest.fixture(params=["redis", "asyncpg"])
def process_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def workers(
    tmp_path: Path, queue_name: str, process_backend: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[CliProcess]:
    dsn = REDIS_URL if process_backend == "redis" else DATABASE_URL
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TEST_", "LITESTAR_"))}
    env.update(TEST_QUEUE=queue_name, TEST_DSN=dsn, PYTHONUNBUFFERED="1", LITESTAR_QUIET_CONSOLE="1")
    # This process's copy of the app (the "web process") uses the same queue.
    config = tasks_app.app.plugins.get(tasks_app.SAQPlugin).config
    monkeypatch.setattr(config.queue_configs[0], "name", queue_name)
    monkeypatch.setattr(config.queue_configs[0], "dsn", dsn)
    process = start_cli(APP, ["workers", "run", "--process"], env, tmp_path / "workers.log")
    yield process
    kill_session(process)


async def test_a_child_process_runs_a_handles_job_with_injected_dependencies(
    workers: CliProcess, process_backend: str
) -> None:
    children = await wait_until(workers.worker_pids, timeout=30, what="a worker process")
    try:
        async with running_app(tasks_app.app):
            job = await tasks_app.who_runs_me.enqueue(label="from the web process")
            done = await wait_for_job(job.get_queue(), None, job.key, timeout=30)
            assert done.result is not None, workers.log()
            assert done.result["pid"] in children
            assert done.result["process"] == f"on_startup in {done.result['pid']}"
            assert done.result["session"] == {"job": "who_runs_me", "state": "open"}
            assert done.result["label"] == "from the web process"
            assert done.timeout == 30  # @task(timeout=30)
            await QUEUE_PURGES[process_backend](job.get_queue())
    finally:
        workers.send(signal.SIGTERM)
        assert await workers.wait_exit(timeout=20) == 0, workers.log()
