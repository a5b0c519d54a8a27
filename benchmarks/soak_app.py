"""The app that ``benchmarks/soak.py`` runs under ``litestar workers run --process``.

Every run of ``count_run`` is recorded in PostgreSQL as (job key, attempt, pid), through a pool that
the app's startup hook puts in ``app.state`` — the same way a real app shares resources with tasks.
``SOAK_DSN`` is the broker, ``SOAK_QUEUE`` the queue name, ``SOAK_RUNS_DSN`` where runs are recorded.
"""

from __future__ import annotations

import os
from typing import Any

import asyncpg
from litestar import Litestar

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin

RUNS_DSN = os.environ.get("SOAK_RUNS_DSN", "postgresql://postgres@127.0.0.1:5432/test")
RUNS_TABLE = os.environ.get("SOAK_RUNS_TABLE", "soak_runs")


async def count_run(ctx: dict[str, Any]) -> None:
    job = ctx["job"]
    await ctx["state"].runs_pool.execute(
        f'INSERT INTO "{RUNS_TABLE}" (key, attempt, pid) VALUES ($1, $2, $3)',
        job.key,
        job.attempts,
        os.getpid(),
    )


async def open_runs_pool(app: Litestar) -> None:
    app.state.runs_pool = await asyncpg.create_pool(RUNS_DSN, min_size=1, max_size=4)


async def close_runs_pool(app: Litestar) -> None:
    await app.state.runs_pool.close()


app = Litestar(
    plugins=[
        SAQPlugin(
            SAQConfig(
                queue_configs=[
                    QueueConfig(
                        name=os.environ.get("SOAK_QUEUE", "soak"),
                        dsn=os.environ.get("SOAK_DSN", "redis://127.0.0.1:6379/0"),
                        tasks=[count_run],
                        concurrency=10,
                        timers={"sweep": 1},
                        shutdown_grace_period_s=5,
                    )
                ]
            )
        )
    ],
    on_startup=[open_runs_pool],
    on_shutdown=[close_runs_pool],
)
