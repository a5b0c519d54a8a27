"""Handlers annotated with SAQ's public types under ``from __future__ import annotations`` (the types imported
only for type checking, as upstream's examples do) work: the plugin puts the types in the app's signature
namespace."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, get
from saq.job import Job, Status
from saq.queue import Queue
from saq.types import Context, QueueInfo, WorkerInfo
from saq.worker import Worker

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin, TaskQueues
from litestar_saq.testing import running_app

SAQ_TYPES = {
    "Context": Context,
    "Job": Job,
    "Queue": Queue,
    "QueueInfo": QueueInfo,
    "Status": Status,
    "Worker": Worker,
    "WorkerInfo": WorkerInfo,
}


def plugin() -> SAQPlugin:
    return SAQPlugin(SAQConfig(queue_configs=[QueueConfig(dsn="memory://", separate_process=False)]))


def test_the_namespace_holds_saqs_public_types() -> None:
    app = Litestar(plugins=[plugin()])
    for name, saq_type in SAQ_TYPES.items():
        assert app.signature_namespace[name] is saq_type
    assert app.signature_namespace["TaskQueues"] is TaskQueues


async def test_handlers_annotated_with_saq_types_answer() -> None:
    from tests.compat.apps.saq_annotations import app

    async with running_app(app) as client:
        info = (await client.get("/info")).json()
        assert info["name"] == "annotated"
        assert len((await client.get("/workers")).json()) == 1
        job = await app.plugins.get(SAQPlugin).task_queues.get("annotated").enqueue("remember", word="hi")
        assert job is not None
        assert (await client.get(f"/jobs/{job.key}")).text in ("queued", "active", "complete")


def test_a_name_the_app_defines_keeps_its_meaning() -> None:
    class Status:  # the app's own Status, not SAQ's
        pass

    @get("/")
    async def index() -> Any:
        return None

    app = Litestar([index], plugins=[plugin()], signature_namespace={"Status": Status})
    assert app.signature_namespace["Status"] is Status
    assert app.signature_namespace["Job"] is Job
