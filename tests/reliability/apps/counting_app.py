"""An app whose one task records every run in PostgreSQL: (job key, attempt, pid).

Configured by environment variables so each test has its own queue and table: ``COUNT_DSN`` (the
broker), ``COUNT_QUEUE``, ``COUNT_TABLE`` and ``DATABASE_URL`` (where runs are recorded).
"""

from __future__ import annotations

import os
from typing import Any

import asyncpg
from litestar import Litestar

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin

RUNS_DSN = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
TABLE = os.environ.get("COUNT_TABLE", "runs")


async def record_run(ctx: dict[str, Any], *, seconds: float = 0) -> None:
    job = ctx["job"]
    await ctx["state"].runs.execute(
        f'INSERT INTO "{TABLE}" (key, attempt, pid) VALUES ($1, $2, $3)', job.key, job.attempts, os.getpid()
    )
    if seconds:
        import asyncio

        await asyncio.sleep(seconds)


async def open_pool(app: Litestar) -> None:
    app.state.runs = await asyncpg.create_pool(RUNS_DSN, min_size=1, max_size=4)


async def close_pool(app: Litestar) -> None:
    await app.state.runs.close()


app = Litestar(
    plugins=[
        SAQPlugin(
            SAQConfig(
                queue_configs=[
                    QueueConfig(
                        name=os.environ.get("COUNT_QUEUE", "count"),
                        dsn=os.environ.get("COUNT_DSN", "redis://127.0.0.1:6379/0"),
                        tasks=[record_run],
                        concurrency=10,
                        timers={"sweep": 1},
                        shutdown_grace_period_s=5,
                    )
                ]
            )
        )
    ],
    on_startup=[open_pool],
    on_shutdown=[close_pool],
)
