"""Store a user and enqueue its welcome email in one PostgreSQL transaction.

Both commit together or neither does: a failed insert leaves no job behind, and the worker cannot see
the job before the user row exists.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from litestar import Litestar, post
from litestar.datastructures import State
from litestar.exceptions import ClientException
from litestar.params import JSONBody

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin, TaskContext, TaskQueues

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@localhost:5432/app")


async def send_welcome_email(ctx: TaskContext, *, user_id: int) -> int:
    email = await ctx["state"].db.fetchval("SELECT email FROM users WHERE id = $1", user_id)
    assert email is not None  # the row was committed with the job
    return user_id


@post("/signup")
async def signup(data: JSONBody[dict[str, str]], state: State, task_queues: TaskQueues) -> dict[str, Any]:
    queue = task_queues.get("default")
    async with state.db.acquire() as connection, connection.transaction():
        try:
            user_id = await connection.fetchval(
                "INSERT INTO users (email) VALUES ($1) RETURNING id", data["email"]
            )
        except asyncpg.UniqueViolationError:
            raise ClientException(f"{data['email']} has already signed up", status_code=409) from None
        # connection=: the job row and its NOTIFY are part of this transaction.
        job = await queue.enqueue("send_welcome_email", user_id=user_id, connection=connection)
    assert job is not None
    return {"user_id": user_id, "key": job.key}


def create_app(database_url: str = DATABASE_URL) -> Litestar:
    @asynccontextmanager
    async def database(app: Litestar) -> AsyncIterator[None]:
        """The app's own pool, in ``app.state`` for handlers and tasks alike."""
        app.state.db = await asyncpg.create_pool(database_url, min_size=1, max_size=5)
        await app.state.db.execute(
            "CREATE TABLE IF NOT EXISTS users (id serial PRIMARY KEY, email text UNIQUE)"
        )
        try:
            yield
        finally:
            await app.state.db.close()

    saq = SAQPlugin(
        SAQConfig(
            queue_configs=[
                QueueConfig(
                    name="default",
                    dsn=database_url,
                    tasks=[send_welcome_email],
                    separate_process=False,
                )
            ]
        )
    )
    return Litestar([signup], plugins=[saq], lifespan=[database])
