"""Task functions of SAQ's test suite (``tests/test_worker.py``), rewritten."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

ctx_var: contextvars.ContextVar[str] = contextvars.ContextVar("ctx_var")


async def noop(_ctx: Any) -> int:
    return 1


async def sleeper(_ctx: Any, sleep: float = 0.1) -> dict[str, Any]:
    await asyncio.sleep(sleep)
    return {"a": 1, "b": []}


async def cron(_ctx: Any, *, param: int) -> int:
    return param


async def error(_ctx: Any) -> None:
    raise ValueError("oops")


async def echo(_ctx: Any, *, a: int) -> int:
    return a


def sync_echo_ctx(_ctx: Any) -> str:
    return ctx_var.get()


async def recurse(ctx: Any, *, n: int) -> list[str]:
    result = [ctx_var.get()]
    if n > 0:
        result += await ctx["queue"].apply("recurse", n=n - 1)
    return result


FUNCTIONS: list[Any] = [noop, sleeper, error, echo, sync_echo_ctx, recurse]
