"""From raw SAQ to the plugin: the same queue, tasks, cron job and hooks."""

from __future__ import annotations

from typing import Any

from saq import CronJob as SAQCronJob

from litestar_saq import CronJob, QueueConfig, SAQConfig, SAQPlugin


async def send_email(ctx: dict[str, Any], *, to: str) -> str:
    return to


async def cleanup(ctx: dict[str, Any]) -> None:
    return None


async def startup(ctx: dict[str, Any]) -> None:
    ctx["ready"] = True


# Before: a settings dict for `saq module.settings`, and a Queue object the web app imports.
#
#   queue = Queue.from_url("redis://localhost:6379/0")
settings = {
    "queue": None,  # the Queue object above
    "functions": [send_email],
    "cron_jobs": [SAQCronJob(cleanup, cron="*/5 * * * *")],
    "concurrency": 10,
    "startup": startup,
}

# After: one QueueConfig; the plugin builds the queue, connects it once per process and runs the workers.
saq = SAQPlugin(
    SAQConfig(
        queue_configs=[
            QueueConfig(
                name="default",
                dsn="redis://localhost:6379/0",
                tasks=[send_email],  # "functions"
                scheduled_tasks=[CronJob(function=cleanup, cron="*/5 * * * *")],  # "cron_jobs"
                concurrency=10,
                startup=startup,
            )
        ]
    )
)
