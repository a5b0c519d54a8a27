"""``enqueue_many`` on PostgreSQL: ``INSERT … SELECT FROM unnest(…)`` statements in one transaction.

Each row follows the rule of a single enqueue (a key already queued or running is a duplicate; a
finished one is replaced), and one ``saq:enqueue`` notification per statement wakes the workers, SAQ's
included. The items go in chunks of ``ENQUEUE_BATCH``: while PostgreSQL inserts one chunk, the next is
built and serialized (building and serializing the jobs cost more than the insert). The chunks share
one transaction, so the call stores all of its jobs or none (an invalid item, a failing
``before_enqueue`` callback); in the caller's own transaction they join that one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from litestar_saq.backends import asyncpg_transactions as transactions
from litestar_saq.backends.saq_queue_hooks import run_before_enqueue
from litestar_saq.bulk_enqueue import job_of_item
from litestar_saq.job_options import JobOptionsQueue

if TYPE_CHECKING:
    from collections.abc import Sequence

    from saq.job import Job

    from litestar_saq.backends.asyncpg_pool import QueuePool
    from litestar_saq.backends.asyncpg_rows import QueueRows
    from litestar_saq.bulk_enqueue import EnqueueItem

__all__ = ("ENQUEUE_BATCH", "BulkInserts")

T = TypeVar("T")

ENQUEUE_BATCH = 500
"""Jobs per statement: small enough that building the next chunk overlaps the insert of this one."""


class BulkInserts(JobOptionsQueue):
    """The ``enqueue_many`` of ``AsyncpgQueue``, which provides ``_pool`` and ``_rows``."""

    _pool: QueuePool
    _rows: QueueRows

    async def enqueue_many(self, items: Iterable[EnqueueItem]) -> list[Job | None]:
        """Enqueue ``items`` as ``JobOptionsQueue.enqueue_many`` does; a repeated key is a duplicate."""
        options = self.job_options

        async def prepare(chunk: list[EnqueueItem]) -> list[Job]:
            jobs = [job_of_item(self, item, options) for item in chunk]
            for job in jobs:
                await run_before_enqueue(self, job)
            return jobs

        return await self._insert_chunks(items, prepare)

    async def _enqueue_many(self, jobs: Sequence[Job]) -> list[Job | None]:
        async def as_given(chunk: list[Job]) -> list[Job]:
            return chunk

        return await self._insert_chunks(jobs, as_given)

    async def _insert_chunks(
        self, items: Iterable[T], prepare: Callable[[list[T]], Awaitable[list[Job]]]
    ) -> list[Job | None]:
        """Prepare and insert ``items`` by chunks; one chunk's insert overlaps the preparing of the next."""
        jobs: list[Job] = []
        first: set[int] = set()  # id() of the first job of each key
        keys: set[str] = set()
        inserted: set[str] = set()
        caller = transactions.caller_connection()
        async with self._pool.connection(caller) as connection, _transaction(connection, caller is None):
            insert: asyncio.Future[set[str]] | None = None
            try:
                chunks = iter(items)
                while chunk := list(itertools.islice(chunks, ENQUEUE_BATCH)):
                    batch = await prepare(chunk)
                    jobs += batch
                    unique: list[Job] = []
                    for job in batch:
                        if job.key not in keys:
                            keys.add(job.key)
                            unique.append(job)
                    first.update(id(job) for job in unique)
                    blobs = [self._blob(job) for job in unique]
                    if insert is not None:
                        inserted |= await insert
                        insert = None
                    if unique:
                        insert = asyncio.ensure_future(self._rows.insert_many(connection, unique, blobs))
                        await asyncio.sleep(0)  # the statement leaves now; the next chunk is built meanwhile
                if insert is not None:
                    inserted |= await insert
                    insert = None
            finally:
                if insert is not None:  # a chunk failed to prepare: the statement under way ends first
                    with contextlib.suppress(Exception):
                        await asyncio.shield(insert)
        return [job if id(job) in first and job.key in inserted else None for job in jobs]

    def _blob(self, job: Job) -> bytes:
        serialized = self.serialize(job)
        return serialized.encode() if isinstance(serialized, str) else serialized


@contextlib.asynccontextmanager
async def _transaction(connection: Any, own: bool) -> AsyncIterator[None]:
    """A transaction of our own on a pooled connection; none in the caller's (its own holds the rows)."""
    if not own:
        yield
        return
    async with connection.transaction():
        yield
