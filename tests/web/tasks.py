"""Tasks the dashboard tests enqueue."""

from __future__ import annotations

import asyncio
from typing import Any


async def flaky(ctx: dict[str, Any], *, label: str = "") -> str:
    """Fail on the first attempt, succeed on any later one (so a retry from the UI visibly works)."""
    attempt = ctx["job"].attempts
    if attempt < 2:
        raise RuntimeError(f"{label} fails on attempt {attempt}")
    return f"{label} ok on attempt {attempt}"


async def echo(ctx: dict[str, Any], *, value: Any = None, **extra: Any) -> Any:
    """Return ``value``; other keyword arguments are accepted and ignored."""
    return value


async def sleeper(ctx: dict[str, Any], *, seconds: float = 30) -> None:
    """Run until aborted (or ``seconds`` pass)."""
    await asyncio.sleep(seconds)
