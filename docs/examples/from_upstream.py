"""An app written for upstream litestar-saq: it runs unchanged on this plugin."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, post

from litestar_saq import CronJob, QueueConfig, SAQConfig, SAQPlugin, TaskQueues


async def system_upkeep(ctx: dict[str, Any]) -> None:
    return None


async def send_report(ctx: dict[str, Any], *, recipient: str) -> str:
    return recipient


@post("/reports")
async def queue_report(task_queues: TaskQueues) -> dict[str, str]:
    job = await task_queues.get("samples").enqueue("send_report", recipient="ops@example.com")
    assert job is not None
    return {"key": job.key}


saq = SAQPlugin(
    config=SAQConfig(
        web_enabled=True,
        use_server_lifespan=True,
        queue_configs=[
            QueueConfig(
                dsn="redis://localhost:6379/0",
                name="samples",
                tasks=[send_report],
                scheduled_tasks=[
                    CronJob(function=system_upkeep, unique=True, cron="*/5 * * * *", timeout=600),
                ],
            )
        ],
    )
)
app = Litestar(route_handlers=[queue_report], plugins=[saq])
