"""The litestar-saq example app.

Run it (workers included) with::

    litestar --app examples.fullstack.app:app run

It uses the in-memory broker by default; set ``SAQ_DSN=redis://localhost:6379/0`` or
``SAQ_DSN=postgresql://postgres@localhost/test`` to use Redis or PostgreSQL.
"""

from __future__ import annotations

import os
from typing import Any

from litestar import Litestar, MediaType, get, post
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody

from examples.fullstack.services import Outbox
from litestar_saq import CronJob, QueueConfig, SAQConfig, SAQPlugin, TaskQueues

SAQ_DSN = os.environ.get("SAQ_DSN", "memory://")

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>litestar-saq example</title></head>
<body>
<h1>litestar-saq example</h1>
<form onsubmit="signup(event)"><input id="email" placeholder="you@example.com" required>
<button>Sign up</button></form>
<pre id="out"></pre>
<script>
async function signup(event) {
  event.preventDefault();
  const response = await fetch("/signup", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({email: document.getElementById("email").value})});
  const {key} = await response.json();
  for (let i = 0; i < 50; i++) {
    const job = await (await fetch("/jobs/" + key)).json();
    document.getElementById("out").textContent = JSON.stringify(job, null, 2);
    if (["complete", "failed", "aborted"].includes(job.status)) break;
    await new Promise(r => setTimeout(r, 200));
  }
}
</script></body></html>"""


@get("/", media_type=MediaType.HTML)
async def index() -> str:
    return PAGE


@post("/signup")
async def signup(data: JSONBody[dict[str, str]], task_queues: TaskQueues) -> dict[str, Any]:
    """Answer at once; the welcome email goes out in the background."""
    job = await task_queues.get("default").enqueue("send_welcome_email", email=data["email"], timeout=30)
    assert job is not None
    return {"key": job.key, "status": job.status}


@get("/jobs/{key:str}")
async def job_status(key: FromPath[str], task_queues: TaskQueues) -> dict[str, Any]:
    job = await task_queues.get("default").job(key)
    if job is None:
        raise NotFoundException(f"no job with key {key!r} in queue 'default'")
    return {
        "key": job.key,
        "function": job.function,
        "status": job.status,
        "result": job.result,
        "error": job.error,
    }


@get("/outbox")
async def outbox(state: State) -> list[dict[str, str]]:
    return list(state.outbox.sent)


def provide_outbox(app: Litestar) -> None:
    app.state.outbox = Outbox()


def create_app(dsn: str = SAQ_DSN) -> Litestar:
    """Build the app for ``dsn`` (``memory://``, ``redis://…`` or ``postgresql://…``)."""
    saq = SAQPlugin(
        SAQConfig(
            queue_configs=[
                QueueConfig(
                    name="default",
                    dsn=dsn,
                    tasks=["examples.fullstack.tasks.send_welcome_email"],
                    scheduled_tasks=[
                        CronJob(function="examples.fullstack.tasks.cleanup", cron="*/5 * * * *", timeout=60)
                    ],
                    separate_process=False,
                )
            ]
        )
    )
    return Litestar([index, signup, job_status, outbox], plugins=[saq], on_startup=[provide_outbox])


app = create_app()
