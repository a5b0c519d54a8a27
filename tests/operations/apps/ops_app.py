"""The app of the operations tests, configured by environment variables so every test has its own queue.

``TEST_QUEUE`` names the queue, ``TEST_DSN`` its broker (default Redis). ``TEST_MAX_JOBS`` and
``TEST_MAX_MEMORY_MB`` set worker recycling; ``TEST_RUNS_TABLE`` (a PostgreSQL table) makes
``record_run`` write every run there.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from litestar import Litestar

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
RUNS_TABLE = os.environ.get("TEST_RUNS_TABLE", "")
_leaked: list[bytes] = []


async def sleep_for(ctx: dict[str, Any], *, seconds: float) -> str:
    # Tests wait for this line: from here on the job is running its function.
    logging.getLogger("tests.operations").warning("sleep_for %s started in %d", ctx["job"].key, os.getpid())
    await asyncio.sleep(seconds)
    return "slept"


async def noop(ctx: dict[str, Any]) -> None:
    return None


async def fail(ctx: dict[str, Any]) -> None:
    raise RuntimeError("failing on purpose")


async def record_run(ctx: dict[str, Any]) -> None:
    job = ctx["job"]
    await ctx["state"].runs.execute(
        f'INSERT INTO "{RUNS_TABLE}" (key, attempt, pid) VALUES ($1, $2, $3)',
        job.key,
        job.attempts,
        os.getpid(),
    )


async def leak(ctx: dict[str, Any], *, megabytes: int) -> int:
    """Keep ``megabytes`` of memory for ever: a task that leaks."""
    _leaked.append(os.urandom(megabytes * 1024 * 1024))
    return os.getpid()


async def open_pool(app: Litestar) -> None:
    if RUNS_TABLE:
        import asyncpg

        app.state.runs = await asyncpg.create_pool(DATABASE_URL, min_size=1, max_size=4)


async def close_pool(app: Litestar) -> None:
    if RUNS_TABLE:
        await app.state.runs.close()


def _optional_int(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value else None


app = Litestar(
    plugins=[
        SAQPlugin(
            SAQConfig(
                queue_configs=[
                    QueueConfig(
                        name=os.environ["TEST_QUEUE"],
                        dsn=os.environ.get("TEST_DSN", REDIS_URL),
                        tasks=[sleep_for, noop, fail, record_run, leak],
                        concurrency=int(os.environ.get("TEST_CONCURRENCY", "10")),
                        timers={"worker_info": 1, "sweep": 600},
                        shutdown_grace_period_s=10,
                        separate_process=True,
                        max_jobs_per_worker=_optional_int("TEST_MAX_JOBS"),
                        max_memory_per_worker_mb=_optional_int("TEST_MAX_MEMORY_MB"),
                    )
                ]
            )
        )
    ],
    on_startup=[open_pool],
    on_shutdown=[close_pool],
)
