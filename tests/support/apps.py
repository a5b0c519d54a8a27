"""Run a Litestar app inside the test's own event loop, so tests can use its queues directly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from litestar import Litestar


@asynccontextmanager
async def running_app(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """Start ``app``'s lifespan in this loop and yield an HTTP client for it; stop the app on exit."""
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def wait_until(condition: Any, *, timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``condition`` (sync or async) until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)
