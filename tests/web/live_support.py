"""Helpers for the live dashboard tests: a uvicorn server in the test's loop and an SSE reader."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from litestar import Litestar

from litestar_saq.web.live import LiveHub
from tests.support.poll import wait_until


@dataclass
class Event:
    """One server-sent event, or a comment (``event`` is ``None`` then)."""

    event: str | None
    data: Any = None
    comment: str | None = None


@dataclass
class EventReader:
    """Reads the events of one open stream, each read bounded by a deadline."""

    response: httpx.Response
    seen: list[Event] = field(default_factory=list)
    _lines: AsyncIterator[str] | None = None

    async def next(self, timeout: float = 10.0) -> Event | None:
        """The next event or comment; ``None`` when the stream ended."""
        return await asyncio.wait_for(self._next(), timeout)

    async def _next(self) -> Event | None:
        if self._lines is None:
            self._lines = self.response.aiter_lines()
        fields: dict[str, str] = {}
        async for line in self._lines:
            if line == "":
                if not fields:
                    continue
                event = Event(
                    event=fields.get("event", "message" if "data" in fields else None),
                    data=json.loads(fields["data"]) if fields.get("data") else None,
                    comment=fields.get(""),
                )
                self.seen.append(event)
                return event
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        return None

    async def wait_for(
        self, check: Callable[[Event], bool], *, timeout: float = 10.0, what: str = "an event"
    ) -> Event:
        """Read until an event passes ``check``; fail after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            try:
                event = await self.next(max(remaining, 0.001))
            except TimeoutError:
                seen = self.seen
                raise AssertionError(f"timed out after {timeout} s waiting for {what}; seen {seen}") from None
            if event is None:
                raise AssertionError(f"the stream ended while waiting for {what}; seen {self.seen}")
            if check(event):
                return event


@asynccontextmanager
async def open_stream(client: httpx.AsyncClient, path: str, **params: str) -> AsyncIterator[EventReader]:
    """Open ``path`` as an event stream; fails unless it answers 200 with ``text/event-stream``."""
    async with client.stream("GET", path, params=params, headers={"Accept": "text/event-stream"}) as response:
        if response.status_code != 200:
            await response.aread()
            raise AssertionError(f"{path} answered {response.status_code}: {response.text}")
        assert response.headers["content-type"].startswith("text/event-stream")
        yield EventReader(response)


@asynccontextmanager
async def serve_in_loop(app: Litestar, *, timeout: float = 15.0) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app`` under uvicorn in this loop on a free port; yield a client for it.

    Close every stream before leaving: uvicorn waits for open responses before it stops.
    """
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_level="warning", ws="none")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started or task.done(), timeout=timeout, what="the server to start")
    if task.done():
        task.result()
        raise AssertionError("the server did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout)


def hub_of(app: Litestar) -> LiveHub:
    """The app's live hub (its stream route carries it in ``opt``)."""
    hub = app.get_handler_index_by_name("saq_web_live_events")["handler"].opt["live_hub"]  # type: ignore[index]
    assert isinstance(hub, LiveHub)
    return hub


def live_tasks() -> list[asyncio.Task[Any]]:
    """The feed tasks still running in this loop."""
    return [task for task in asyncio.all_tasks() if task.get_name().startswith("litestar-saq-live")]
