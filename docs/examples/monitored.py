"""A long job that sends heartbeats and reports its progress."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Litestar, get, post
from litestar.params import FromPath, JSONBody

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin, TaskContext, TaskQueues, monitored_job


@monitored_job()  # a heartbeat every `heartbeat / 2` seconds while the task runs
async def build_report(ctx: TaskContext, *, pages: int) -> dict[str, int]:
    job = ctx["job"]
    for page in range(1, pages + 1):
        await asyncio.sleep(0.01)  # the real work
        await job.update(progress=page / pages)  # stored with the job: readers see it
    return {"pages": pages}


@post("/reports")
async def start_report(data: JSONBody[dict[str, int]], task_queues: TaskQueues) -> dict[str, str]:
    job = await task_queues.get("reports").enqueue(
        "build_report",
        pages=data["pages"],
        heartbeat=30,  # swept as stuck after 30 s without a heartbeat (the worker died)…
        timeout=0,  # …but no limit on the run itself
    )
    assert job is not None
    return {"key": job.key}


@get("/reports/{key:str}")
async def report_progress(key: FromPath[str], task_queues: TaskQueues) -> dict[str, Any]:
    job = await task_queues.get("reports").job(key)
    if job is None:
        return {"status": "unknown"}
    return {"status": job.status, "progress": job.progress, "result": job.result}


saq = SAQPlugin(
    SAQConfig(
        queue_configs=[
            QueueConfig(name="reports", dsn="memory://", tasks=[build_report], separate_process=False)
        ]
    )
)
app = Litestar([start_report, report_progress], plugins=[saq])
