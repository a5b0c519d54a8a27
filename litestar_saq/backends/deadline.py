"""``within(awaitable, seconds)``: ``asyncio.wait_for`` without its extra task and its lost cancellations.

Up to Python 3.11 ``wait_for`` wraps the awaitable in a task of its own, which costs a fifth of a Redis
enqueue, and when that task finishes just as the caller is cancelled, it returns the result and the
cancellation is lost (a loop around it then never stops). ``asyncio.timeout`` (3.11+) only arms a timer
on the current task and keeps every cancellation.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Awaitable

__all__ = ("within",)

T = TypeVar("T")


async def within(awaitable: Awaitable[T], seconds: float | None) -> T:
    """Await ``awaitable``; raise ``TimeoutError`` (cancelling it) after ``seconds`` (``None``: never)."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)  # pragma: no cover - Python 3.10
