"""The fleet test app: one task that records each run (key, host, attempt, worker, start time).

Runs are recorded in the broker the job came from, so the test reads them from the root namespace:
a Redis list (``FLEET_RUNS`` is its key) or a PostgreSQL table (``FLEET_RUNS`` is its name). Configured
by environment: ``FLEET_DSN`` (the broker as the hosts reach it), ``FLEET_QUEUE``, ``FLEET_RUNS``,
``FLEET_GRACE`` (the queue's ``orphan_grace_s``).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from typing import Any

from litestar import Litestar

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin

RUNS = os.environ.get("FLEET_RUNS", "runs")
WORKER_INFO_S = 2
"""Stats every 2 s, kept 3 s: with FLEET_GRACE a dead host's jobs are back within ~3 + grace + 2 s."""


async def record_run(ctx: dict[str, Any], *, seconds: float = 0.0) -> str:
    """Record this run, then work ``seconds``; return this host's name."""
    job, queue, host = ctx["job"], ctx["queue"], socket.gethostname()
    run = (job.key, host, job.attempts, job.worker_id or "", time.time())
    if hasattr(queue, "pool"):
        await queue.pool.execute(
            f'INSERT INTO "{RUNS}" (key, host, attempt, worker_id, started) VALUES ($1, $2, $3, $4, $5)', *run
        )
    else:
        await queue.redis.rpush(RUNS, json.dumps(run))
    if seconds:
        await asyncio.sleep(seconds)
    return host


app = Litestar(
    plugins=[
        SAQPlugin(
            SAQConfig(
                queue_configs=[
                    QueueConfig(
                        name=os.environ.get("FLEET_QUEUE", "fleet"),
                        dsn=os.environ.get("FLEET_DSN", "redis://127.0.0.1:6379/0"),
                        tasks=[record_run],
                        concurrency=10,
                        timers={"sweep": 1, "worker_info": WORKER_INFO_S},
                        broker_options={"orphan_grace_s": float(os.environ.get("FLEET_GRACE", "3"))},
                        shutdown_grace_period_s=5,
                    )
                ]
            )
        )
    ],
)
