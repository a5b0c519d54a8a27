"""Tasks and hooks that the configuration samples name by dotted path."""

from __future__ import annotations

from litestar_saq import TaskContext


async def send_welcome_email(ctx: TaskContext, *, email: str) -> str:
    return f"welcomed {email}"


async def rebuild_index(ctx: TaskContext, *, shard: int) -> int:
    return shard


async def cleanup(ctx: TaskContext) -> int:
    return 0


async def open_http_client(ctx: TaskContext) -> None:
    """``startup`` hook: runs once per worker, with the same ``ctx`` the tasks get."""
    ctx["state"].worker_started = True
