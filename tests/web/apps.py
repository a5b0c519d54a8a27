"""Dashboard test apps: one queue on a chosen backend, test routes to enqueue and inspect jobs."""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar import Litestar, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.params import FromQuery, JSONBody
from redis.asyncio import Redis
from saq.job import Job

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin, TaskQueues
from tests.support.brokers import DATABASE_URL, REDIS_URL
from tests.web import tasks

BACKEND_DSNS = {"memory": "memory://", "redis": REDIS_URL, "asyncpg": DATABASE_URL}
TOKEN = "let-me-in"


def token_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Allow requests with ``X-Token: let-me-in``: 401 without the header, 403 with another value."""
    token = connection.headers.get("x-token")
    if token is None:
        raise NotAuthorizedException("send an X-Token header")
    if token != TOKEN:
        raise PermissionDeniedException("wrong token")


@post("/test/enqueue")
async def enqueue(data: JSONBody[dict[str, Any]], task_queues: TaskQueues) -> dict[str, Any]:
    job = await task_queues.get(data["queue"]).enqueue(
        data["task"], key=data["key"], **data.get("kwargs", {}), **data.get("options", {})
    )
    assert job is not None, f"duplicate key {data['key']!r}"
    return {"key": job.key}


@get("/test/job")
async def show_job(queue: FromQuery[str], key: FromQuery[str], task_queues: TaskQueues) -> dict[str, Any]:
    job = await task_queues.get(queue).job(key)
    if job is None:
        return {"status": None}
    return {"status": job.status.value, "attempts": job.attempts, "result": job.result}


INJECTED_HTML = "<img src=x id=pwned onerror=\"document.title='pwned'\">"
HOSTILE = {"props": {"innerHTML": INJECTED_HTML}}
"""What SAQ's renderer would take for element data if a job field reached it as an object."""


async def plant_hostile_job(queue: Any, key: str) -> None:
    """Store a job with ``HOSTILE`` in every field that can hold it; scheduled far ahead, it never runs."""
    function: Any = HOSTILE  # SAQ's annotation says str; a stored job can hold anything
    job = Job(
        function=function, kwargs={"props": HOSTILE["props"]}, key=key, scheduled=4_000_000_000, meta=HOSTILE
    )
    assert await queue.enqueue(job) is not None
    await queue.update(job, error=HOSTILE, result=HOSTILE, progress=HOSTILE, group_key=INJECTED_HTML)


@post("/test/plant")
async def plant(data: JSONBody[dict[str, str]], task_queues: TaskQueues) -> dict[str, Any]:
    await plant_hostile_job(task_queues.get(data["queue"]), data["key"])
    return {"key": data["key"]}


def cookie_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Allow requests with the cookie ``session=let-me-in``, as an app's login would set it."""
    if connection.cookies.get("session") != TOKEN:
        raise NotAuthorizedException("log in first")


def make_app(
    queue_name: str, backend: str, *, app_options: dict[str, Any] | None = None, **saq_options: Any
) -> Litestar:
    """Return an app with queue ``queue_name`` on ``backend`` and its worker in the app process."""
    queue_config = QueueConfig(
        name=queue_name,
        dsn=BACKEND_DSNS[backend],
        tasks=[tasks.flaky, tasks.echo, tasks.sleeper, tasks.stepper],
        separate_process=False,
        timers={"worker_info": 1, "abort": 0.1},
    )
    config = SAQConfig(queue_configs=[queue_config], web_enabled=True, **saq_options)
    return Litestar([enqueue, show_job, plant], plugins=[SAQPlugin(config)], **(app_options or {}))


async def purge(backend: str, queue_name: str) -> None:
    """Delete what a test's queue left in its broker."""
    if backend == "redis":
        client: Redis = Redis.from_url(REDIS_URL)
        try:
            keys = [key async for key in client.scan_iter(match=f"saq:*{queue_name}*", count=1000)]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()
    elif backend == "asyncpg":
        connection = await asyncpg.connect(DATABASE_URL)
        try:
            await connection.execute("DELETE FROM saq_jobs WHERE queue = $1", queue_name)
            await connection.execute("DELETE FROM saq_stats WHERE queue_key = $1", queue_name)
        finally:
            await connection.close()
