"""Fixtures for the dashboard tests: apps per backend, in-loop clients and a real uvicorn server."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from litestar import Litestar

from litestar_saq.testing import running_app
from tests.support.poll import wait_until, wait_until_sync
from tests.web.apps import make_app, purge


@pytest.fixture(params=["memory", "redis", "asyncpg"])
def backend(request: pytest.FixtureRequest) -> str:
    """Each backend in turn."""
    return str(request.param)


@dataclass
class Dashboard:
    """A running test app, a client for it and helpers to enqueue and wait for jobs."""

    app: Litestar | None
    """The app when it runs in the test's loop; ``None`` when it runs in a server thread."""
    client: httpx.AsyncClient
    queue_name: str

    async def enqueue(self, task: str, key: str, **kwargs: Any) -> None:
        options = kwargs.pop("options", {})
        body = {"queue": self.queue_name, "task": task, "key": key, "kwargs": kwargs, "options": options}
        response = await self.client.post("/test/enqueue", json=body)
        assert response.status_code == 201, response.text

    async def job(self, key: str) -> dict[str, Any]:
        response = await self.client.get("/test/job", params={"queue": self.queue_name, "key": key})
        return dict(response.json())

    async def wait_for_status(self, key: str, *statuses: str, timeout: float = 10.0) -> dict[str, Any]:
        last: dict[str, Any] = {}

        async def reached() -> dict[str, Any] | None:
            last.update(job=await self.job(key))
            return last["job"] if last["job"]["status"] in statuses else None

        result: dict[str, Any] = await wait_until(
            reached, timeout=timeout, what=lambda: f"job {key!r} to be {statuses} (it is {last.get('job')})"
        )
        return result


@pytest.fixture
async def dashboard_factory(backend: str, queue_name: str) -> AsyncIterator[Callable[..., Any]]:
    """Start a dashboard app on ``backend`` with the given ``SAQConfig`` options; purge afterwards."""
    stack: list[Any] = []

    async def start(**saq_options: Any) -> Dashboard:
        app = make_app(queue_name, backend, **saq_options)
        manager = running_app(app)
        client = await manager.__aenter__()
        stack.append(manager)
        return Dashboard(app=app, client=client, queue_name=queue_name)

    try:
        yield start
    finally:
        for manager in reversed(stack):
            await manager.__aexit__(None, None, None)
        await purge(backend, queue_name)


@pytest.fixture
async def dashboard(dashboard_factory: Callable[..., Any]) -> Dashboard:
    """A public dashboard app on ``backend``."""
    return await dashboard_factory()  # type: ignore[no-any-return]


@contextmanager
def serve_in_thread(app: Litestar, *, timeout: float = 15.0) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free 127.0.0.1 port in a background thread; yield its base URL."""
    # A page left open on a live view keeps its event stream open, and uvicorn stopped by should_exit
    # (no signal the dashboard could see) waits for open responses: cut them after a second.
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan="on",
        log_level="warning",
        ws="none",
        http="h11",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="dashboard-test-server", daemon=True)
    thread.start()
    wait_until_sync(
        lambda: server.started or not thread.is_alive(),
        timeout=timeout,
        interval=0.01,
        what="the test server to start",
    )
    if not server.started:
        raise RuntimeError("the test server did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        assert not thread.is_alive(), "the test server did not stop"
