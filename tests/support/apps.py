"""Helpers for the plugin's own tests."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from litestar_saq.testing import running_app

__all__ = ("running_app", "wait_until")


async def wait_until(
    condition: Any, *, timeout: float = 10.0, interval: float = 0.02, what: str = "the condition"
) -> Any:
    """Poll ``condition`` (sync or async) until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)
