# This module deliberately has no ``from __future__ import annotations``: the DI must work both ways.
from typing import Any

from litestar import Controller, get, post
from litestar.params import JSONBody

from litestar_saq import TaskQueues


@post("/plain/enqueue")
async def enqueue_plain(data: JSONBody[dict[str, Any]], task_queues: TaskQueues) -> dict[str, Any]:
    job = await task_queues.get(data["queue"]).enqueue("echo", value=data["value"])
    assert job is not None
    return {"key": job.key}


class PlainController(Controller):
    path = "/plain/controller"

    @get("/queues")
    async def list_queues(self, task_queues: TaskQueues) -> list[str]:
        return sorted(task_queues)
