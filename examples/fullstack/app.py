"""The litestar-saq example app: every feature, the way we recommend using it.

Run it, workers included::

    litestar --app examples.fullstack.app:app run

It runs on the in-memory broker by default. ``SAQ_DSN=redis://127.0.0.1:6379/0`` or
``SAQ_DSN=postgresql://postgres@127.0.0.1:5432/test`` switches to Redis or PostgreSQL; on PostgreSQL
the signup stores the user and enqueues the welcome email in one transaction.

- ``POST /signup`` stores a user and enqueues ``send_welcome_email``;
- ``POST /reports`` enqueues ``build_report``, a ``monitored_job`` whose progress ``/reports/{key}``
  shows live;
- ``cleanup`` runs every five minutes (a cron job);
- ``/saq/``, ``/outbox`` and ``/jobs/{key}`` are behind a login (admin / admin, or
  ``DASHBOARD_PASSWORD``; ``auth.py``), which gives the session a new id;
- tasks are ``@task`` handles (``tasks.py``), enqueued with typed calls; the mail service (the outbox)
  and a database session per job are injected (``dependencies.py``).
"""

from __future__ import annotations

import os
from typing import Any

from litestar import Litestar, MediaType, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody

from examples.fullstack import pages
from examples.fullstack.auth import RenewingSessionConfig, login, login_page, requires_login
from examples.fullstack.dependencies import provide_db, provide_outbox
from examples.fullstack.services import MemoryUsers, Outbox, PostgresUsers
from examples.fullstack.tasks import build_report, cleanup, send_welcome_email
from litestar_saq import CronJob, QueueConfig, SAQConfig, SAQPlugin, TaskQueues
from litestar_saq.backends.asyncpg import AsyncpgQueue

SAQ_DSN = os.environ.get("SAQ_DSN", "memory://")


@get("/", media_type=MediaType.HTML)
async def index() -> str:
    return pages.HOME


@post("/signup")
async def signup(
    data: JSONBody[dict[str, str]], task_queues: TaskQueues, state: State
) -> Response[dict[str, Any]]:
    """Store the user and enqueue the welcome email: both happen, or neither does."""
    email = data["email"]
    queue = task_queues.get("default")
    users = state.users
    if isinstance(users, PostgresUsers) and isinstance(queue, AsyncpgQueue):
        async with users.pool.acquire() as connection, connection.transaction():
            if not await users.add(email, connection):
                return Response({"error": f"{email} is already signed up"}, status_code=409)
            # On the caller's connection: the job exists only if this transaction commits. (By name:
            # `connection=` is an AsyncpgQueue option that a handle's typed enqueue does not take.)
            queued = await queue.enqueue(send_welcome_email.name, connection=connection, email=email)
            assert queued is not None
            job = queued
    else:
        if not await users.add(email):
            return Response({"error": f"{email} is already signed up"}, status_code=409)
        job = await send_welcome_email.enqueue(email=email)
    return Response({"key": job.key, "status": job.status}, status_code=201)


@post("/reports")
async def start_report(task_queues: TaskQueues) -> dict[str, Any]:
    """Start a long report; ``heartbeat`` lets a dead worker's report be retried within seconds."""
    job = await build_report.enqueue()  # timeout, retries and heartbeat: see @task
    return {"key": job.key}


@get("/reports/{key:str}", media_type=MediaType.HTML)
async def report_page(key: FromPath[str]) -> str:
    return pages.REPORT


@get("/jobs/{key:str}", guards=[requires_login])  # results and errors may hold personal data
async def job_status(key: FromPath[str], task_queues: TaskQueues) -> dict[str, Any]:
    job = await task_queues.get("default").job(key)
    if job is None:
        raise NotFoundException(f"no job with key {key!r} in queue 'default'")
    return {
        "key": job.key,
        "function": job.function,
        "status": job.status,
        "progress": job.progress,
        "result": job.result,
        "error": job.error,
    }


@get("/outbox", guards=[requires_login])  # the addresses of everyone who signed up
async def outbox(state: State) -> list[dict[str, Any]]:
    return list(state.outbox.sent)


async def open_resources(app: Litestar) -> None:
    """Put the app's resources in ``app.state``, where handlers and tasks find them.

    Users live in PostgreSQL when the queue does (so one transaction covers user and job), else in
    memory.
    """
    app.state.outbox = Outbox()
    queue_config = app.plugins.get(SAQPlugin).config.get_queue_config("default")
    if queue_config.scheme in ("postgres", "postgresql", "postgresql+asyncpg"):
        import asyncpg

        dsn = str(queue_config.dsn).replace("postgresql+asyncpg://", "postgresql://")
        app.state.users = PostgresUsers(await asyncpg.create_pool(dsn, min_size=1, max_size=5))
        await app.state.users.create_table()
    else:
        app.state.users = MemoryUsers()


async def close_resources(app: Litestar) -> None:
    if isinstance(app.state.users, PostgresUsers):
        await app.state.users.pool.close()


def create_app(dsn: str = SAQ_DSN) -> Litestar:
    """Build the app for ``dsn`` (``memory://``, ``redis://…`` or ``postgresql://…``)."""
    saq = SAQPlugin(
        SAQConfig(
            # What tasks get injected, by parameter name (see tasks.py).
            dependencies={"outbox": provide_outbox, "db": provide_db},
            queue_configs=[
                QueueConfig(
                    name="default",
                    dsn=dsn,
                    tasks=[send_welcome_email, build_report],
                    scheduled_tasks=[CronJob(function=cleanup, cron="*/5 * * * *")],
                    separate_process=False,
                )
            ],
            web_enabled=True,
            web_guards=[requires_login],
            # A browser that is not logged in is sent to the login page, and back after it.
            web_login_url="/login",
        )
    )
    return Litestar(
        [index, signup, start_report, report_page, job_status, outbox, login_page, login],
        plugins=[saq],
        middleware=[RenewingSessionConfig().middleware],
        on_startup=[open_resources],
        on_shutdown=[close_resources],
    )


app = create_app()
