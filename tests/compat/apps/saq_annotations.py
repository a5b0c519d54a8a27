"""Handlers annotated with SAQ's types that are only imported for type checking, as upstream apps do."""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar import Litestar, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin

if TYPE_CHECKING:
    from saq.job import Job, Status
    from saq.queue import Queue
    from saq.types import Context, QueueInfo, WorkerInfo

    from litestar_saq.config import TaskQueues


async def remember(ctx: Context, *, word: str) -> str:
    return word


async def provide_queue(task_queues: TaskQueues) -> Queue:
    return task_queues.get("annotated")


@get("/info", dependencies={"queue": Provide(provide_queue)})
async def queue_info(queue: NamedDependency[Queue]) -> QueueInfo:
    return await queue.info()


@get("/workers")
async def workers(task_queues: TaskQueues) -> dict[str, WorkerInfo]:
    return (await task_queues.get("annotated").info())["workers"]


@get("/jobs/{key:str}", dependencies={"queue": Provide(provide_queue)})
async def job_status(queue: NamedDependency[Queue], key: FromPath[str]) -> Status | None:
    job: Job | None = await queue.job(key)
    return job.status if job else None


app = Litestar(
    route_handlers=[queue_info, workers, job_status],
    plugins=[
        SAQPlugin(
            SAQConfig(
                queue_configs=[
                    QueueConfig(name="annotated", dsn="memory://", separate_process=False, tasks=[remember])
                ]
            )
        )
    ],
)
