"""Two queues, two worker modes: one worker inside the web process, one queue in worker processes."""

from __future__ import annotations

import os

from litestar import Litestar

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin, TaskContext

BROKER = os.environ.get("SAQ_DSN", "redis://localhost:6379/0")


async def send_email(ctx: TaskContext, *, to: str) -> str:
    return to


async def render_report(ctx: TaskContext, *, report_id: int) -> int:
    return report_id


saq = SAQPlugin(
    SAQConfig(
        queue_configs=[
            # Light, I/O-bound jobs: a worker in every web process, started by the app's lifespan.
            QueueConfig(name="emails", dsn=BROKER, tasks=[send_email], separate_process=False),
            # Heavy jobs: never in the web process; in worker processes of their own.
            QueueConfig(
                name="reports",
                dsn=BROKER,
                tasks=[render_report],
                separate_process=True,
                worker_processes=2,
                shutdown_grace_period_s=60,
            ),
        ],
        # True: `litestar run` also starts (and stops) the worker processes of "reports".
        # False: start them yourself with `litestar workers run --process`.
        use_server_lifespan=os.environ.get("SAQ_SERVER_LIFESPAN", "1") == "1",
    )
)

app = Litestar(plugins=[saq])
