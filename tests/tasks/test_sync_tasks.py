"""Sync (``def``) tasks on every backend: they run in the worker's bounded thread pool without blocking
the loop, reach their job through ``SyncJob``, stop when aborted, and get dependencies injected."""

from __future__ import annotations

import threading

import pytest
from litestar import Litestar
from saq.job import Status

from litestar_saq import CronJob, QueueConfig, SyncJob
from litestar_saq.testing import drain, running_app, wait_for_job
from tests.support.poll import wait_until
from tests.tasks.conftest import MakeApp
from tests.tasks.sample_tasks import (
    DEPENDENCIES,
    Mailer,
    ThreadGauge,
    add,
    blocking_add,
    gauged,
    reports_progress,
    stops_when_aborted,
    sync_with_dependency,
)


async def test_an_async_job_completes_while_a_sync_one_sleeps(make_app: MakeApp, queue_name: str) -> None:
    app = make_app(tasks=[add, blocking_add])
    async with running_app(app):
        sleeping = await blocking_add.enqueue(a=1, b=2, seconds=3)

        async def started() -> bool:
            await sleeping.refresh()
            return sleeping.status == Status.ACTIVE

        await wait_until(started, timeout=10, what="the sync job to start")
        assert await add.apply(a=20, b=22) == 42
        await sleeping.refresh()
        assert sleeping.status == Status.ACTIVE  # still sleeping in its thread
        done = await wait_for_job(sleeping.get_queue(), None, sleeping.key, timeout=10)
        assert done.result["sum"] == 3
        assert done.result["thread"].startswith(f"saq-{queue_name}")


async def test_sync_task_threads_bound_how_many_run_at_once(make_app: MakeApp) -> None:
    async def add_gauge(app: Litestar) -> None:
        app.state.gauge = ThreadGauge()

    app = make_app(tasks=[gauged], concurrency=10, sync_task_threads=2, on_startup=[add_gauge])
    async with running_app(app):
        for _ in range(6):
            await gauged.enqueue(seconds=0.3)
        await drain(app, timeout=20)
        assert app.state.gauge.most == 2


async def test_a_sync_task_updates_and_refreshes_its_job(make_app: MakeApp) -> None:
    app = make_app(tasks=[reports_progress])
    async with running_app(app):
        assert await reports_progress.apply(steps=4) == "1.0"


async def test_a_sync_task_sees_its_abort(make_app: MakeApp) -> None:
    async def add_events(app: Litestar) -> None:
        app.state.started = threading.Event()
        app.state.saw_abort = threading.Event()

    app = make_app(tasks=[stops_when_aborted], on_startup=[add_events])
    async with running_app(app):
        job = await stops_when_aborted.enqueue()
        await wait_until(app.state.started.is_set, timeout=10, what="the sync task to start")
        await job.abort("enough")
        job = await wait_for_job(job.get_queue(), None, job.key, timeout=15)
        assert job.status == Status.ABORTED
        await wait_until(app.state.saw_abort.is_set, timeout=10, what="the task to see its abort")


async def test_a_sync_task_gets_its_dependencies(make_app: MakeApp, queue_name: str) -> None:
    async def add_mailer(app: Litestar) -> None:
        app.state.mailer = Mailer()

    app = make_app(tasks=[sync_with_dependency], dependencies=DEPENDENCIES, on_startup=[add_mailer])
    async with running_app(app):
        thread = await sync_with_dependency.apply(to="ada@example.com")
        assert thread.startswith(f"saq-{queue_name}")
        assert app.state.mailer.sent == ["ada@example.com"]


def test_a_sync_cron_function_is_accepted() -> None:
    config = QueueConfig(
        dsn="memory://",
        separate_process=False,
        scheduled_tasks=[CronJob(function=blocking_add, cron="* * * * *", kwargs={"a": 1, "b": 1})],
    )
    assert "blocking_add" in config.resolve_tasks()


def test_sync_job_outside_a_sync_task_says_where_it_works() -> None:
    with pytest.raises(RuntimeError, match="inside a sync"):
        SyncJob({"job": None})
