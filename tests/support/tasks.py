"""Tasks and hooks that tests name by dotted path (``tests.support.tasks.…``)."""

from __future__ import annotations

import asyncio
from typing import Any

HOOK_CALLS: list[str] = []


async def echo(ctx: dict[str, Any], *, value: Any) -> Any:
    return value


async def describe_ctx(ctx: dict[str, Any]) -> dict[str, Any]:
    """Report what the task saw in ``ctx``."""
    return {
        "keys": sorted(ctx),
        "job_key": ctx["job"].key,
        "queue": ctx["queue"].name,
        "worker_id": ctx["worker"].id,
        "app_debug": ctx["app"].debug,
        "greeting": ctx["state"]["greeting"],
    }


async def sleep_for(ctx: dict[str, Any], *, seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "slept"


async def cron_tick(ctx: dict[str, Any]) -> str:
    """A cron job that proves ``ctx`` has the queue and the app state."""
    ctx["state"]["cron_ticks"] = ctx["state"].get("cron_ticks", 0) + 1
    return ctx["queue"].name


async def hook_a(ctx: dict[str, Any]) -> None:
    HOOK_CALLS.append("a")


async def hook_b(ctx: dict[str, Any]) -> None:
    HOOK_CALLS.append("b")


def sync_task(ctx: dict[str, Any]) -> None:
    """Not allowed as a task: plain ``def``."""


NOT_CALLABLE = 42
