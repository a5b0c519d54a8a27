"""``enqueue_many`` on PostgreSQL: one ``INSERT … SELECT FROM unnest(…)`` per batch of jobs.

Each row follows the rule of a single enqueue (a key already queued or running is a duplicate; a
finished one is replaced), and one ``saq:enqueue`` notification wakes the workers, SAQ's included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar_saq.backends import asyncpg_transactions as transactions
from litestar_saq.job_options import JobOptionsQueue

if TYPE_CHECKING:
    from collections.abc import Sequence

    from saq.job import Job

    from litestar_saq.backends.asyncpg_pool import QueuePool
    from litestar_saq.backends.asyncpg_rows import QueueRows

__all__ = ("ENQUEUE_BATCH", "BulkInserts")

ENQUEUE_BATCH = 5000
"""Jobs per statement: PostgreSQL takes far more, but a statement holds its row locks until it ends."""


class BulkInserts(JobOptionsQueue):
    """The ``_enqueue_many`` of ``AsyncpgQueue``, which provides ``_pool`` and ``_rows``."""

    _pool: QueuePool
    _rows: QueueRows

    async def _enqueue_many(self, jobs: Sequence[Job]) -> list[Job | None]:
        """Insert ``jobs``, one statement per ``ENQUEUE_BATCH``; a key repeated in ``jobs`` is a duplicate."""
        unique = list({job.key: job for job in reversed(jobs)}.values())[::-1]  # the first of each key
        inserted: set[str] = set()
        async with self._pool.connection(transactions.caller_connection()) as connection:
            for start in range(0, len(unique), ENQUEUE_BATCH):
                batch = unique[start : start + ENQUEUE_BATCH]
                blobs = [self._blob(job) for job in batch]
                inserted |= await self._rows.insert_many(connection, batch, blobs)
        first = {id(job) for job in unique}
        return [job if id(job) in first and job.key in inserted else None for job in jobs]

    def _blob(self, job: Job) -> bytes:
        serialized = self.serialize(job)
        return serialized.encode() if isinstance(serialized, str) else serialized
