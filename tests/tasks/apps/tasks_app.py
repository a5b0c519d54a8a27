"""An app whose ``separate_process`` queue runs ``@task`` handles with injected dependencies, for the
``workers run --process`` tests. ``TEST_QUEUE`` names the queue, ``TEST_DSN`` its broker."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

from litestar import Litestar
from litestar.datastructures import State
from saq.job import Job

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin, TaskContext, injected, task


def provide_process(state: State) -> str:
    return f"{state.opened_by} in {os.getpid()}"


async def provide_session(job: Job) -> AsyncIterator[dict[str, str]]:
    session = {"job": job.function, "state": "open"}
    yield session
    session["state"] = "closed"


@task(timeout=30)
async def who_runs_me(
    ctx: TaskContext,
    *,
    label: str,
    process: str = injected(),
    session: dict[str, str] = injected(),
) -> dict[str, object]:
    return {"label": label, "pid": os.getpid(), "process": process, "session": dict(session)}


def open_state(app: Litestar) -> None:
    app.state.opened_by = "on_startup"


app = Litestar(
    on_startup=[open_state],
    plugins=[
        SAQPlugin(
            SAQConfig(
                dependencies={"process": provide_process},
                queue_configs=[
                    QueueConfig(
                        name=os.environ.get("TEST_QUEUE", "tasks"),
                        dsn=os.environ.get("TEST_DSN", "redis://127.0.0.1:6379/0"),
                        tasks=[who_runs_me],
                        dependencies={"session": provide_session},
                        separate_process=True,
                    )
                ],
            )
        )
    ],
)
