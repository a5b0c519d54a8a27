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


STEP_GATES: dict[str, int] = {}
"""How many steps each ``stepper`` job (by key) may take: a test raises it to move the job on. Plain
ints, so a test in another thread or event loop than the worker can set them."""


async def stepper(ctx: dict[str, Any], *, steps: int = 3) -> str:
    """Take ``steps`` steps, each when ``STEP_GATES[key]`` allows it, updating progress and meta."""
    job = ctx["job"]
    for step in range(1, steps + 1):
        while STEP_GATES.get(job.key, 0) < step:
            await asyncio.sleep(0.01)  # the job's timeout bounds the wait
        await job.update(progress=step / steps, meta={"step": step})
    return f"{steps} steps"
