"""Tasks as Litestar citizens: typed handles, injected dependencies, enqueue after the response,
a sync task, and job defaults. Runs on ``memory://`` with the worker in the app process."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from litestar import Litestar, Response, post
from litestar.datastructures import State
from litestar.di import Provide
from litestar.params import JSONBody

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin, SyncJob, TaskContext, TaskQueues, injected, task


@dataclass
class Mailer:
    """The app's mail service (a stand-in that keeps what it sent)."""

    sent: list[str] = field(default_factory=list)

    async def send(self, to: str, subject: str) -> None:
        self.sent.append(f"{to}: {subject}")


@dataclass
class Session:
    """A unit of work, as an SQLAlchemy ``AsyncSession`` would be."""

    log: list[str]
    pending: list[str] = field(default_factory=list)


def provide_mailer(state: State) -> Mailer:
    return state.mailer  # type: ignore[no-any-return]  # set by open_mailer below


async def provide_session(state: State) -> AsyncIterator[Session]:
    """A generator provider: committed when the job succeeds, rolled back when it raises."""
    session = Session(log=state.db_log)
    try:
        yield session
    except Exception:
        session.log.append("rollback")
        raise
    else:
        session.log.extend(session.pending)
        session.log.append("commit")


@task(timeout=30, retries=3)
async def send_welcome(
    ctx: TaskContext,
    *,
    email: str,
    mailer: Mailer = injected(),
    session: Session = injected(),
) -> str:
    await mailer.send(email, "Welcome!")
    session.pending.append(f"welcomed {email}")
    return email


@task(timeout=120)
def make_thumbnail(ctx: TaskContext, *, path: str, steps: int = 3) -> str:
    """A plain ``def``: runs in a worker thread; ``SyncJob`` reaches its job from there."""
    job = SyncJob(ctx)
    for step in range(steps):
        if job.is_aborting():
            return "aborted"
        time.sleep(0.01)  # blocking work
        job.update(progress=(step + 1) / steps)
    return f"{path}.thumb.png"


@post("/signup")
async def signup(data: JSONBody[dict[str, str]]) -> Response[dict[str, str]]:
    """Answer at once; the welcome email is enqueued once the response has been sent."""
    return Response({"status": "ok"}, background=send_welcome.after_response(email=data["email"]))


@post("/thumbnails")
async def thumbnail(data: JSONBody[dict[str, str]]) -> dict[str, Any]:
    job = await make_thumbnail.with_options(key=f"thumb-{data['path']}").enqueue(path=data["path"])
    return {"key": job.key}


@post("/legacy")
async def legacy(data: JSONBody[dict[str, str]], task_queues: TaskQueues) -> Response[dict[str, str]]:
    """The string style still works, and has its own after-response form."""
    background = task_queues.after_response("default", "send_welcome", email=data["email"])
    return Response({"status": "ok"}, background=background)


def open_resources(app: Litestar) -> None:
    app.state.mailer = Mailer()
    app.state.db_log = []


app = Litestar(
    [signup, thumbnail, legacy],
    on_startup=[open_resources],
    plugins=[
        SAQPlugin(
            SAQConfig(
                dependencies={"mailer": Provide(provide_mailer, sync_to_thread=False)},
                queue_configs=[
                    QueueConfig(
                        dsn="memory://",
                        separate_process=False,
                        tasks=[send_welcome, make_thumbnail],
                        dependencies={"session": provide_session},
                        job_defaults={"timeout": 60, "retries": 2},
                        sync_task_threads=4,
                    )
                ],
            )
        )
    ],
)
