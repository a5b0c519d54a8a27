"""``AsyncpgQueue.enqueue_many`` over several statements (``ENQUEUE_BATCH`` jobs each) in one transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from litestar_saq.backends import asyncpg_bulk
from litestar_saq.backends.asyncpg import AsyncpgQueue
from litestar_saq.exceptions import LitestarSaqError

JOBS = 2 * asyncpg_bulk.ENQUEUE_BATCH + 7
"""Three chunks, the last a short one."""


async def test_keys_repeated_across_chunks_are_duplicates(
    asyncpg_queues: Callable[..., Awaitable[AsyncpgQueue]], queue_name: str
) -> None:
    queue = await asyncpg_queues()
    keys = [f"{queue_name}-{n}" for n in range(JOBS)]
    # The last chunk repeats a key of the first one: it is a duplicate although a statement apart.
    items = [("echo", {"a": n, "key": key}) for n, key in enumerate(keys)]
    items.append(("echo", {"a": -1, "key": keys[0]}))
    jobs = await queue.enqueue_many(items)
    assert [job is None for job in jobs] == [False] * JOBS + [True]
    assert await queue.count("queued") == JOBS
    stored = await queue.job(keys[0])
    assert stored is not None and stored.kwargs == {"a": 0}


async def test_an_invalid_item_in_a_later_chunk_stores_none_of_the_call(
    asyncpg_queues: Callable[..., Awaitable[AsyncpgQueue]], queue_name: str
) -> None:
    queue = await asyncpg_queues()
    items: list[object] = [("echo", {"a": n, "key": f"{queue_name}-{n}"}) for n in range(JOBS)]
    items[-1] = (42, {})  # no task name: found only after two chunks went in
    with pytest.raises(LitestarSaqError):
        await queue.enqueue_many(items)  # type: ignore[arg-type]
    assert await queue.count("queued") == 0
    # The connection is usable again: the next call stores its jobs.
    assert all(job is not None for job in await queue.enqueue_many(["noop", "noop"]))
    assert await queue.count("queued") == 2
