"""A fetch that takes the last due job says so: the finish of that job claims nothing for its slot."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from saq.job import Status

from litestar_saq.backends.asyncpg import AsyncpgQueue

MakeQueue = Callable[..., Awaitable[AsyncpgQueue]]


async def claims_counted(make: MakeQueue) -> tuple[AsyncpgQueue, list[str]]:
    """A queue whose claim statements (``FOR UPDATE SKIP LOCKED``) are listed as they are sent."""
    claims: list[str] = []

    def logged(query: Any) -> None:
        if "SKIP LOCKED" in query.query:
            claims.append(query.query)

    async def init(connection: Any) -> None:
        connection.add_query_logger(logged)

    return await make(pool_options={"init": init}), claims


async def settled(queue: AsyncpgQueue) -> None:
    """Wait for the fetches under way (the LISTEN connection's first one, a returning slot's)."""
    fetcher = queue._fetcher
    assert fetcher is not None
    await asyncio.gather(*list(fetcher._tasks))


async def claims_of_finish(queue: AsyncpgQueue, claims: list[str]) -> int:
    """Dequeue one job and finish it as a worker's slot does; how many claims the finish sent."""
    job = await queue.dequeue(timeout=5)
    assert job is not None
    await settled(queue)
    before = len(claims)
    await queue.finish(job, Status.COMPLETE, result=1)
    await settled(queue)
    return len(claims) - before


async def test_the_finish_of_the_last_due_job_claims_nothing(asyncpg_queues: MakeQueue) -> None:
    queue, claims = await claims_counted(asyncpg_queues)
    await queue.enqueue("echo", a=0)
    await claims_of_finish(queue, claims)  # the first dequeue also starts listening, which fetches
    await queue.enqueue("echo", a=1)
    assert await claims_of_finish(queue, claims) == 0, claims


async def test_the_finish_claims_the_next_job_while_more_are_due(asyncpg_queues: MakeQueue) -> None:
    queue, claims = await claims_counted(asyncpg_queues)
    await queue.enqueue("echo", a=1)
    await queue.enqueue("echo", a=2)
    assert await claims_of_finish(queue, claims) == 1, claims  # the slot's next job, claimed meanwhile
    assert await queue.count("active") == 1
