"""The plugin on a real Redis: DI, in-process workers, ctx, hooks, shutdown and cron."""

from __future__ import annotations

import time
import warnings
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from litestar import Controller, Litestar, get, post
from litestar.datastructures import State
from litestar.params import JSONBody
from redis.asyncio import Redis
from saq.job import Status
from saq.queue import Queue

from litestar_saq import CronJob, QueueConfig, QueueNotFoundError, SAQConfig, SAQPlugin, TaskQueues
from litestar_saq.backends.redis import RedisQueue
from litestar_saq.testing import running_app, wait_for_job
from tests.support import tasks
from tests.support.handlers_plain import PlainController, enqueue_plain
from tests.support.poll import wait_until

pytestmark = pytest.mark.asyncio


@post("/future/enqueue")
async def enqueue_future(data: JSONBody[dict[str, Any]], task_queues: TaskQueues) -> dict[str, Any]:
    job = await task_queues.get(data["queue"]).enqueue(data.get("task", "echo"), **data.get("kwargs", {}))
    assert job is not None
    return {"key": job.key}


@get("/future/unknown")
async def unknown_queue(task_queues: TaskQueues) -> str:
    try:
        task_queues.get("nope")
    except QueueNotFoundError as exc:
        return str(exc)
    return "no error"


@get("/future/identity")
async def registry_identity(task_queues: TaskQueues) -> dict[str, int]:
    return {name: id(queue) for name, queue in task_queues.items()} | {"registry": id(task_queues)}


class FutureController(Controller):
    path = "/future/controller"

    @get("/queues")
    async def list_queues(self, task_queues: TaskQueues) -> list[str]:
        return sorted(task_queues)


def put_greeting(app: Litestar) -> None:
    app.state.greeting = "hello from on_startup"


def make_app(*queue_configs: QueueConfig, **app_options: Any) -> Litestar:
    return Litestar(
        route_handlers=[
            enqueue_future,
            unknown_queue,
            registry_identity,
            FutureController,
            PlainController,
            enqueue_plain,
        ],
        plugins=[SAQPlugin(SAQConfig(queue_configs=list(queue_configs)))],
        on_startup=[put_greeting],
        **app_options,
    )


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    client: Redis = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def cleanup_keys(redis_client: Redis, queue_name: str) -> AsyncIterator[None]:
    yield
    keys = [key async for key in redis_client.scan_iter(match=f"saq:*{queue_name}*")]
    if keys:
        await redis_client.delete(*keys)


def in_process_queue(name: str, redis_url: str, **options: Any) -> QueueConfig:
    options.setdefault("tasks", [tasks.echo, tasks.describe_ctx, tasks.sleep_for])
    return QueueConfig(name=name, dsn=redis_url, separate_process=False, **options)


@pytest.mark.usefixtures("cleanup_keys")
async def test_handlers_enqueue_and_in_process_worker_runs_job(redis_url: str, queue_name: str) -> None:
    app = make_app(in_process_queue(queue_name, redis_url))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        async with running_app(app) as client:
            for path in ("/future/enqueue", "/plain/enqueue"):
                response = await client.post(
                    path, json={"queue": queue_name, "kwargs": {"value": 7}, "value": 7}
                )
                assert response.status_code == 201, response.text
                queue = app.plugins.get(SAQPlugin).task_queues.get(queue_name)
                job = await queue.job(response.json()["key"])
                assert job is not None
                job = await wait_for_job(queue, None, job.key)  # refresh(until_complete) can miss a finish
                assert job.status == Status.COMPLETE
                assert job.result == 7
            for path in ("/future/controller/queues", "/plain/controller/queues"):
                assert (await client.get(path)).json() == [queue_name]


@pytest.mark.usefixtures("cleanup_keys")
async def test_task_ctx_has_job_worker_queue_app_and_state(redis_url: str, queue_name: str) -> None:
    app = make_app(in_process_queue(queue_name, redis_url), debug=True)
    async with running_app(app) as client:
        response = await client.post("/future/enqueue", json={"queue": queue_name, "task": "describe_ctx"})
        queue = app.plugins.get(SAQPlugin).task_queues.get(queue_name)
        job = await queue.job(response.json()["key"])
        assert job is not None
        job = await wait_for_job(queue, None, job.key)  # refresh(until_complete) can miss a finish
    assert job.status == Status.COMPLETE, job.error
    seen = job.result
    assert {"job", "worker", "queue", "app", "state"} <= set(seen["keys"])
    assert seen["job_key"] == job.key
    assert seen["queue"] == queue_name
    assert seen["app_debug"] is True
    assert seen["greeting"] == "hello from on_startup"


@pytest.mark.usefixtures("cleanup_keys")
async def test_unknown_queue_error_names_it_and_known_queues(redis_url: str, queue_name: str) -> None:
    async with running_app(make_app(in_process_queue(queue_name, redis_url))) as client:
        message = (await client.get("/future/unknown")).text
    assert "'nope'" in message
    assert repr(queue_name) in message


@pytest.mark.usefixtures("cleanup_keys")
async def test_queues_connect_once_per_lifespan(
    redis_url: str, queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    connects: list[str] = []
    original_connect = RedisQueue.connect

    async def counting_connect(self: RedisQueue) -> None:
        connects.append(self.name)
        await original_connect(self)

    monkeypatch.setattr(RedisQueue, "connect", counting_connect)
    async with running_app(make_app(in_process_queue(queue_name, redis_url))) as client:
        identities = [(await client.get("/future/identity")).json() for _ in range(5)]
    assert connects == [queue_name]
    assert all(identity == identities[0] for identity in identities)


async def test_broker_instance_is_used_and_never_closed(redis_client: Redis, queue_name: str) -> None:
    app = make_app(
        QueueConfig(name=queue_name, broker_instance=redis_client, separate_process=False, tasks=[tasks.echo])
    )
    async with running_app(app) as client:
        response = await client.post("/future/enqueue", json={"queue": queue_name, "kwargs": {"value": "x"}})
        queue = app.plugins.get(SAQPlugin).task_queues.get(queue_name)
        job = await queue.job(response.json()["key"])
        assert job is not None
        job = await wait_for_job(queue, None, job.key)  # refresh(until_complete) can miss a finish
        assert job.result == "x"
    assert await redis_client.ping() is True  # still open after the app shut down
    keys = [key async for key in redis_client.scan_iter(match=f"saq:*{queue_name}*")]
    if keys:
        await redis_client.delete(*keys)


async def test_user_queue_instance_is_not_disconnected(redis_url: str, queue_name: str) -> None:
    queue = RedisQueue.from_url(redis_url, name=queue_name)
    await queue.connect()
    app = make_app(
        QueueConfig(name=queue_name, broker_instance=queue, separate_process=False, tasks=[tasks.echo])
    )
    async with running_app(app):
        assert app.plugins.get(SAQPlugin).task_queues.get(queue_name) is queue
    job = await queue.enqueue("echo", value=1)  # the queue still works after the app stopped
    assert job is not None
    await queue.abort(job, "test over")
    await queue.disconnect()


@pytest.mark.usefixtures("cleanup_keys")
async def test_separate_process_queue_runs_no_worker_in_web_process(redis_url: str, queue_name: str) -> None:
    app = make_app(QueueConfig(name=queue_name, dsn=redis_url, separate_process=True, tasks=[tasks.echo]))
    async with running_app(app) as client:
        response = await client.post("/future/enqueue", json={"queue": queue_name, "kwargs": {"value": 1}})
        assert response.status_code == 201
        plugin = app.plugins.get(SAQPlugin)
        queue = plugin.task_queues.get(queue_name)
        assert plugin.queues_to_run_here() == []
        info = await queue.info()
        assert info["workers"] == {}
        assert info["queued"] == 1


@pytest.mark.usefixtures("cleanup_keys")
async def test_shutdown_waits_for_running_job_within_grace(redis_url: str, queue_name: str) -> None:
    app = make_app(in_process_queue(queue_name, redis_url, shutdown_grace_period_s=10))
    async with running_app(app) as client:
        response = await client.post(
            "/future/enqueue", json={"queue": queue_name, "task": "sleep_for", "kwargs": {"seconds": 1}}
        )
        queue = app.plugins.get(SAQPlugin).task_queues.get(queue_name)
        key = response.json()["key"]
        await wait_until(lambda: _status(queue, key, Status.ACTIVE))
    checker = RedisQueue.from_url(redis_url, name=queue_name)
    await checker.connect()
    job = await checker.job(key)
    await checker.disconnect()
    assert job is not None
    assert job.status == Status.COMPLETE
    assert job.result == "slept"


@pytest.mark.usefixtures("cleanup_keys")
async def test_job_over_grace_period_is_put_back_for_retry(redis_url: str, queue_name: str) -> None:
    app = make_app(in_process_queue(queue_name, redis_url, shutdown_grace_period_s=1))
    started = time.monotonic()
    async with running_app(app) as client:
        response = await client.post(
            "/future/enqueue",
            json={"queue": queue_name, "task": "sleep_for", "kwargs": {"seconds": 60, "timeout": 120}},
        )
        queue = app.plugins.get(SAQPlugin).task_queues.get(queue_name)
        key = response.json()["key"]
        await wait_until(lambda: _status(queue, key, Status.ACTIVE))
    assert time.monotonic() - started < 10
    checker = RedisQueue.from_url(redis_url, name=queue_name)
    await checker.connect()
    job = await checker.job(key)
    queued = await checker.count("queued")
    await checker.disconnect()
    assert job is not None
    assert job.status == Status.QUEUED
    assert job.error == "cancelled"
    assert queued == 1


@pytest.mark.usefixtures("cleanup_keys")
async def test_idle_worker_stops_without_waiting_for_grace(redis_url: str, queue_name: str) -> None:
    app = make_app(in_process_queue(queue_name, redis_url, shutdown_grace_period_s=30))
    async with running_app(app):
        queue = app.plugins.get(SAQPlugin).task_queues.get(queue_name)
        await wait_until(lambda: _has_live_worker(queue), what="the worker to register")
        stop_started = time.monotonic()
    assert time.monotonic() - stop_started < 3


@pytest.mark.usefixtures("cleanup_keys")
async def test_user_hooks_run_in_order_after_ours(redis_url: str, queue_name: str) -> None:
    tasks.HOOK_CALLS.clear()
    app = make_app(
        in_process_queue(
            queue_name,
            redis_url,
            startup=[tasks.hook_b, "tests.support.tasks.hook_a"],
            before_process="tests.support.tasks.hook_a",
            after_process=[tasks.hook_b],
            shutdown=["tests.support.tasks.hook_a", tasks.hook_b],
        )
    )
    async with running_app(app) as client:
        await wait_until(lambda: tasks.HOOK_CALLS[:2] == ["b", "a"])
        response = await client.post("/future/enqueue", json={"queue": queue_name, "kwargs": {"value": 1}})
        queue = app.plugins.get(SAQPlugin).task_queues.get(queue_name)
        job = await queue.job(response.json()["key"])
        assert job is not None
        job = await wait_for_job(queue, None, job.key)  # refresh(until_complete) can miss a finish
        await wait_until(lambda: len(tasks.HOOK_CALLS) >= 4)
    assert tasks.HOOK_CALLS == ["b", "a", "a", "b", "a", "b"]


@pytest.mark.usefixtures("cleanup_keys")
async def test_cron_job_from_dotted_path_runs_with_queue_and_state(redis_url: str, queue_name: str) -> None:
    app = make_app(
        in_process_queue(
            queue_name,
            redis_url,
            scheduled_tasks=[
                CronJob(function="tests.support.tasks.cron_tick", cron="* * * * * *", timeout=5)
            ],
            timers={"schedule": 1},
        )
    )
    async with running_app(app):
        state: State = app.state
        await wait_until(lambda: state.get("cron_ticks", 0) >= 2, timeout=10)
        queue = app.plugins.get(SAQPlugin).task_queues.get(queue_name)
        job = await queue.job("cron:cron_tick")
        assert job is not None
        assert job.timeout == 5


@pytest.mark.usefixtures("cleanup_keys")
async def test_cron_schedule_respects_cron_tz(redis_url: str, queue_name: str) -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    app = make_app(
        in_process_queue(
            queue_name,
            redis_url,
            scheduled_tasks=[CronJob(function=tasks.cron_tick, cron="0 3 * * *")],
            cron_tz="Asia/Tokyo",
            timers={"schedule": 1},
        )
    )
    async with running_app(app):
        queue = app.plugins.get(SAQPlugin).task_queues.get(queue_name)
        await wait_until(lambda: queue.job("cron:cron_tick"))
        job = await queue.job("cron:cron_tick")
    assert job is not None
    expected = croniter("0 3 * * *", datetime.now(tokyo)).get_next(datetime)
    assert job.scheduled == int(expected.timestamp())
    assert datetime.fromtimestamp(job.scheduled, tokyo).hour == 3


async def _status(queue: Any, key: str, status: Status) -> bool:
    job = await queue.job(key)
    return job is not None and job.status == status


async def _has_live_worker(queue: Queue) -> bool:
    return bool((await queue.info())["workers"])
