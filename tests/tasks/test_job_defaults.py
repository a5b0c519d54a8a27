"""Job options on every backend: explicit > ``@task`` > ``QueueConfig.job_defaults`` > SAQ, for enqueues by
name, by handle and by cron; the warning about SAQ's implicit timeout; how long failed jobs are kept."""

from __future__ import annotations

import logging

from saq.job import Job, Status

from litestar_saq import CronJob, SAQPlugin, task
from litestar_saq.backends.redis import RedisQueue
from litestar_saq.testing import running_app, wait_for_job
from litestar_saq.worker_group import build_worker
from tests.support.poll import wait_until
from tests.tasks.conftest import MakeApp
from tests.tasks.sample_tasks import add, greet, slow

QUEUE_DEFAULTS = {"timeout": 60, "retries": 3, "ttl": 100, "retry_delay": 1.5, "retry_backoff": True}


def options_of(job: object) -> tuple[object, ...]:
    return tuple(getattr(job, name) for name in ("timeout", "retries", "ttl", "retry_delay", "retry_backoff"))


async def test_precedence_for_enqueues_by_name_and_by_handle(make_app: MakeApp) -> None:
    app = make_app(tasks=[add, greet], job_defaults=QUEUE_DEFAULTS)
    async with running_app(app):
        queue = app.plugins.get(SAQPlugin).task_queues.get(
            app.plugins.get(SAQPlugin).config.queue_configs[0].name
        )
        by_name = await queue.enqueue("add", a=1, scheduled=2**40)
        assert options_of(by_name) == (60, 3, 100, 1.5, True)  # the queue's defaults
        task_options = await queue.enqueue("tests.tasks.greet", name="x", scheduled=2**40)
        assert options_of(task_options) == (30, 2, 120, 1.5, True)  # @task over the queue
        explicit = await queue.enqueue("tests.tasks.greet", name="x", timeout=5, retries=1, scheduled=2**40)
        assert options_of(explicit) == (5, 1, 120, 1.5, True)
        by_handle = await greet.with_options(timeout=10, scheduled=2**40).enqueue(name="y")
        assert options_of(by_handle) == (10, 2, 120, 1.5, True)
        plain = await add.with_options(scheduled=2**40).enqueue(a=2)
        assert options_of(plain) == (60, 3, 100, 1.5, True)


async def test_precedence_for_cron_jobs(make_app: MakeApp) -> None:
    app = make_app(
        tasks=[add],
        job_defaults=QUEUE_DEFAULTS,
        scheduled_tasks=[
            CronJob(function=greet, cron="0 0 1 1 *", kwargs={"name": "cron"}),
            CronJob(function=add, cron="0 0 1 1 *", timeout=7, kwargs={"a": 1}),
        ],
    )
    plugin = app.plugins.get(SAQPlugin)
    async with running_app(app):
        queue_config = plugin.config.queue_configs[0]
        queue = plugin.task_queues.get(queue_config.name)
        worker = build_worker(queue_config, queue, app, config=plugin.config)
        await worker.schedule()
        greet_run = await queue.job("cron:tests.tasks.greet")
        add_run = await queue.job("cron:add")
        assert greet_run is not None and add_run is not None
        assert options_of(greet_run) == (30, 2, 120, 1.5, True)
        assert options_of(add_run) == (7, 3, 100, 1.5, True)


async def test_saqs_implicit_timeout_is_warned_about_once_per_queue(
    make_app: MakeApp, queue_name: str
) -> None:
    app = make_app(tasks=[add], job_defaults=None)
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]  # the app's logging config may not propagate
    logging.getLogger("litestar_saq").addHandler(handler)
    try:
        async with running_app(app):
            assert await add.apply(a=1) == 1
            await add.apply(a=2)
            await add.with_options(timeout=3).apply(a=3)
    finally:
        logging.getLogger("litestar_saq").removeHandler(handler)
    warnings = [record.getMessage() for record in records if "implicit" in record.getMessage()]
    assert len(warnings) == 1
    assert queue_name in warnings[0] and "10 s timeout" in warnings[0] and "job_defaults" in warnings[0]


@task
async def always_fails(ctx: object) -> None:
    raise RuntimeError("no")


async def test_failed_and_aborted_jobs_are_kept_failed_ttl(make_app: MakeApp, backend: str) -> None:
    app = make_app(tasks=[always_fails, add, slow], job_defaults={"timeout": 30, "ttl": 1}, failed_ttl=3600)
    async with running_app(app):
        failed = await always_fails.enqueue()
        failed = await wait_for_job(failed.get_queue(), None, failed.key)
        assert (failed.status, failed.ttl) == (Status.FAILED, 3600)
        running = await slow.enqueue(seconds=30)
        await wait_until(lambda: _is_active(running), timeout=10, what="the job to start")
        await running.abort("not needed")
        aborted = await wait_for_job(running.get_queue(), None, running.key, timeout=15)
        assert (aborted.status, aborted.ttl) == (Status.ABORTED, 3600)
        done = await add.apply(a=1)
        assert done == 1
        queue = failed.get_queue()
        if isinstance(queue, RedisQueue):
            assert await queue.redis.ttl(failed.id) > 60  # not the job's ttl of 1 s


async def _is_active(job: Job) -> bool:
    await job.refresh()
    return job.status == Status.ACTIVE
