"""Getting started: one queue in memory, its worker inside the app, one task and one handler.

Run it with ``litestar --app docs.examples.first_app:app run`` (from the repository root).
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, get, post
from litestar.params import FromPath, JSONBody

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin, TaskContext, TaskQueues


async def send_welcome_email(ctx: TaskContext, *, email: str) -> str:
    """A task: ``async def``, the context first, then keyword arguments."""
    ctx["state"].sent.append(email)  # app.state, filled by the app's startup hooks
    return f"welcomed {email}"


@post("/signup")
async def signup(data: JSONBody[dict[str, str]], task_queues: TaskQueues) -> dict[str, Any]:
    job = await task_queues.get("default").enqueue("send_welcome_email", email=data["email"])
    assert job is not None
    return {"key": job.key}


@get("/jobs/{key:str}")
async def job_status(key: FromPath[str], task_queues: TaskQueues) -> dict[str, Any]:
    job = await task_queues.get("default").job(key)
    return {"status": job.status if job else "unknown", "result": job.result if job else None}


def keep_sent_emails(app: Litestar) -> None:
    app.state.sent = []


saq = SAQPlugin(
    SAQConfig(
        queue_configs=[
            QueueConfig(
                name="default",
                dsn="memory://",  # no service needed; use redis://… or postgresql://… in production
                tasks=[send_welcome_email],
                separate_process=False,  # run the worker inside the app process
            )
        ]
    )
)

app = Litestar([signup, job_status], plugins=[saq], on_startup=[keep_sent_emails])
