"""Enqueue after the response, on every backend: the job is enqueued only once the response is sent, and an
enqueue that fails then is logged (queue, task, cause) without touching the response."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Litestar, Response, post
from saq.job import Job

from litestar_saq import SAQPlugin, TaskQueues
from litestar_saq.testing import drain, running_app
from tests.tasks.conftest import MakeApp
from tests.tasks.sample_tasks import add, greet


@post("/by-handle")
async def by_handle() -> Response[dict[str, bool]]:
    return Response({"ok": True}, background=add.after_response(a=1, b=2))


@post("/by-name")
async def by_name(task_queues: TaskQueues) -> Response[dict[str, bool]]:
    queue_name = next(iter(task_queues))
    return Response({"ok": True}, background=task_queues.after_response(queue_name, "add", a=3, timeout=9))


@post("/unlisted")
async def unlisted() -> Response[dict[str, bool]]:
    return Response({"ok": True}, background=greet.after_response(name="nobody"))  # not in tasks=[...]


@post("/no-such-queue")
async def no_such_queue(task_queues: TaskQueues) -> Response[dict[str, bool]]:
    return Response({"ok": True}, background=task_queues.after_response("nowhere", "add", a=1))


ROUTES = [by_handle, by_name, unlisted, no_such_queue]


async def call(app: Litestar, path: str, events: list[str]) -> int:
    """POST ``path`` through the ASGI interface, noting in ``events`` when the response body is sent."""
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        if message["type"] == "http.response.body" and not message.get("more_body"):
            events.append("response sent")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)  # type: ignore[arg-type]  # a plain dict scope
    return status


async def test_the_job_is_enqueued_after_the_response_is_sent(make_app: MakeApp) -> None:
    app = make_app(tasks=[add], route_handlers=ROUTES)
    events: list[str] = []
    enqueued: list[Job] = []

    async def note_enqueue(job: Job) -> None:
        events.append(f"enqueued {job.function}")
        enqueued.append(job)

    async with running_app(app):
        plugin = app.plugins.get(SAQPlugin)
        queue = plugin.task_queues.get(plugin.config.queue_configs[0].name)
        queue.register_before_enqueue(note_enqueue)
        assert await call(app, "/by-handle", events) == 201
        assert await call(app, "/by-name", events) == 201
        await drain(app)
    assert events == ["response sent", "enqueued add", "response sent", "enqueued add"]
    assert [job.kwargs for job in enqueued] == [{"a": 1, "b": 2}, {"a": 3}]
    assert enqueued[1].timeout == 9


async def test_a_failed_enqueue_is_logged_and_the_response_stands(make_app: MakeApp, queue_name: str) -> None:
    app = make_app(tasks=[add], route_handlers=ROUTES)
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = records.append  # type: ignore[method-assign]  # the app's logging config may not propagate
    logging.getLogger("litestar_saq").addHandler(handler)
    try:
        async with running_app(app):
            assert await call(app, "/unlisted", []) == 201
            assert await call(app, "/no-such-queue", []) == 201
    finally:
        logging.getLogger("litestar_saq").removeHandler(handler)
    messages = [record.getMessage() for record in records]
    assert any(
        "queue None: enqueuing task 'tests.tasks.greet' after the response failed: TaskNotEnqueueableError"
        in m
        for m in messages
    ), messages
    assert any(
        "queue 'nowhere': enqueuing task 'add' after the response failed: QueueNotFoundError" in m
        for m in messages
    ), messages
