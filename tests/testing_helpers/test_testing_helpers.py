"""``litestar_saq.testing``: what users rely on to test code that enqueues."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from saq.job import Status

from litestar_saq import BrokerUnavailableError, QueueConfig, SAQConfig, SAQConfigError, SAQPlugin
from litestar_saq.testing import drain, in_memory_queues, running_app, wait_for_job
from tests.support import tasks


def redis_app(**queue_options: Any) -> Litestar:
    queue_options.setdefault("tasks", [tasks.echo, tasks.sleep_for])
    config = QueueConfig(name="jobs", dsn="redis://127.0.0.1:1/0", **queue_options)  # never reached
    return Litestar(plugins=[SAQPlugin(SAQConfig(queue_configs=[config]))])


async def test_in_memory_queues_swaps_brokers_and_restores_them() -> None:
    app = redis_app(separate_process=True, broker_options={"health_check_interval": 30})
    plugin = app.plugins.get(SAQPlugin)
    with in_memory_queues(app):
        assert [config.dsn for config in plugin.config.queue_configs] == ["memory://"]
        async with running_app(app):
            queue = plugin.task_queues.get("jobs")
            assert type(queue).__name__ == "MemoryQueue"
    assert [config.dsn for config in plugin.config.queue_configs] == ["redis://127.0.0.1:1/0"]
    assert plugin.config.queue_configs[0].separate_process is True


async def test_drain_runs_jobs_of_queues_without_an_in_process_worker() -> None:
    app = redis_app(separate_process=True)
    with in_memory_queues(app):
        plugin = app.plugins.get(SAQPlugin)
        plugin.config.queue_configs[0].separate_process = True  # as in production: workers elsewhere
        async with running_app(app):
            queue = plugin.task_queues.get("jobs")
            jobs = [await queue.enqueue("echo", value=value) for value in range(5)]
            assert await queue.count("queued") == 5
            await drain(app)
            results = [await wait_for_job(queue, None, job.key) for job in jobs if job is not None]
    assert [job.result for job in results] == [0, 1, 2, 3, 4]
    assert all(job.status == Status.COMPLETE for job in results)


async def test_drain_times_out_naming_the_busy_queue() -> None:
    app = redis_app(separate_process=False, shutdown_grace_period_s=0)
    with in_memory_queues(app):
        async with running_app(app):
            queue = app.plugins.get(SAQPlugin).task_queues.get("jobs")
            await queue.enqueue("sleep_for", seconds=5, timeout=10)
            with pytest.raises(TimeoutError, match="'jobs'"):
                await drain(app, timeout=0.3)


async def test_wait_for_job_reports_unknown_keys_and_slow_jobs() -> None:
    app = redis_app(separate_process=False, shutdown_grace_period_s=0)
    with in_memory_queues(app):
        async with running_app(app):
            with pytest.raises(LookupError, match="no job with key 'nope'"):
                await wait_for_job(app, "jobs", "nope")
            queue = app.plugins.get(SAQPlugin).task_queues.get("jobs")
            job = await queue.enqueue("sleep_for", seconds=5, timeout=10)
            assert job is not None
            with pytest.raises(TimeoutError, match="still"):
                await wait_for_job(app, "jobs", job.key, timeout=0.2)


async def test_running_app_raises_startup_errors() -> None:
    app = redis_app(separate_process=False)  # Redis on port 1: nothing listens
    with pytest.raises(BrokerUnavailableError, match=r"cannot reach Redis at 127\.0\.0\.1:1/0"):
        async with running_app(app):
            pass


def test_helpers_need_the_plugin() -> None:
    with pytest.raises(SAQConfigError, match="no SAQPlugin"), in_memory_queues(Litestar()):
        pass


async def test_saq_in_memory_fixture(saq_in_memory: Any) -> None:
    app = redis_app(separate_process=False)
    saq_in_memory(app)
    async with running_app(app) as client:
        assert (await client.get("/missing")).status_code == 404
        queue = app.plugins.get(SAQPlugin).task_queues.get("jobs")
        job = await queue.enqueue("echo", value="ok")
        assert job is not None
        assert (await wait_for_job(queue, None, job.key)).result == "ok"
