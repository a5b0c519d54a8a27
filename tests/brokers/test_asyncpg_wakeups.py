"""Every enqueue wakes an idle asyncpg worker at once: no job waits for the safety-net poll.

The safety-net poll and the worker's schedule tick (which fetches too) are set far beyond each wait's
timeout here, so a wake-up missed even once fails the test instead of costing a second. Two misses
this catches (both seen as ~1 s stalls of ``apply``/``map``): a waiter's mark locking a just-enqueued
row while a claim skipped it (``FOR UPDATE SKIP LOCKED``), and a fetch under way with a snapshot older
than the enqueue it was told about.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from litestar_saq.backends.asyncpg import AsyncpgQueue
from tests.support.workers import running_worker

MakeQueue = Callable[..., Awaitable[AsyncpgQueue]]
NO_TICKS = {"timers": {"schedule": 60, "sweep": 60}}


async def echo(_ctx: Any, *, a: int) -> int:
    return a


async def test_apply_and_map_never_wait_for_the_safety_net_poll(asyncpg_queues: MakeQueue) -> None:
    queue = await asyncpg_queues(fallback_poll_interval=60)
    async with running_worker(queue, [("echo", echo)], concurrency=4, **NO_TICKS):
        for number in range(150):
            # A missed wake-up (of the wait or of the job's start) would sleep 60 s: the 5 s timeout fails.
            assert await queue.apply("echo", a=number, poll_interval=60, timeout=5) == number
            assert await queue.map("echo", [{"a": number}, {"a": -number}], poll_interval=60, timeout=5) == [
                number,
                -number,
            ]


async def test_jobs_enqueued_together_while_waited_on_all_start_at_once(asyncpg_queues: MakeQueue) -> None:
    queue = await asyncpg_queues(fallback_poll_interval=60)
    async with running_worker(queue, [("echo", echo)], concurrency=4, **NO_TICKS):
        for round_number in range(50):
            jobs = await asyncio.gather(*(queue.enqueue("echo", a=round_number * 10 + n) for n in range(3)))
            for job in jobs:
                assert job is not None
                await job.refresh(until_complete=5)  # marks the job waited for while a claim may run
                assert job.result == job.kwargs["a"]
