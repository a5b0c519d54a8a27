"""Group commit of enqueues: the jobs enqueued while one insert is under way go in the next statement.

A handler that enqueues one job awaits its insert until PostgreSQL has committed it, as before. What
changes under load is that the enqueues of many concurrent requests share one ``INSERT … FROM unnest``
statement (the one ``enqueue_many`` uses: SAQ's duplicate rule for each row, one ``saq:enqueue``
notification per statement), so a busy web process sends one statement where it sent dozens. Nothing
waits for a batch to fill: a lone enqueue is written at once, on the single-row statement.

A key enqueued twice before its first insert is written goes in the next statement, so the second is a
duplicate of the first exactly as it would be one after the other. A statement that fails is retried
job by job (one bad job does not fail its neighbours) unless PostgreSQL is unreachable: then each
enqueue of the batch gets the error, as it would have alone. A caller cancelled (its timeout) before
its job was taken into a statement withdraws the job; once the statement is sent, the write goes on.

Enqueues on the caller's own connection (:mod:`asyncpg_transactions`) and from another event loop
than the writer's are written at once, on their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from litestar_saq.backends import asyncpg_transactions as transactions
from litestar_saq.backends.deadline import within

if TYPE_CHECKING:
    from saq.job import Job

    from litestar_saq.backends.asyncpg_pool import QueuePool
    from litestar_saq.backends.asyncpg_rows import QueueRows

__all__ = ("MAX_ENQUEUE_BATCH", "EnqueueWrites")

logger = logging.getLogger("litestar_saq.asyncpg")

MAX_ENQUEUE_BATCH = 500
"""Jobs per statement at most (a statement holds its rows' locks until it commits)."""

Pending = tuple["Job", bytes, "asyncio.Future[bool]"]


class EnqueueWrites:
    """Insert single enqueues of one queue in shared statements; :meth:`flush` waits for all handed in.

    Args:
        pool: the queue's pool.
        rows: the queue's statements.
        unreachable: the errors that mean PostgreSQL is gone (no job-by-job retry then).
        timeout: seconds a statement (with its connection acquire) may take before its callers fail.
    """

    def __init__(
        self,
        pool: QueuePool,
        rows: QueueRows,
        unreachable: tuple[type[BaseException], ...],
        timeout: float,
    ) -> None:
        self._pool, self._rows = pool, rows
        self._unreachable, self._timeout = unreachable, timeout
        self._queued: list[Pending] = []
        self._writer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.statements = 0
        """Shared statements written so far (for benchmarks and tests)."""

    async def insert(self, job: Job, blob: bytes) -> bool:
        """Store ``job`` (``blob`` serialised) and notify; ``False`` if it is a duplicate."""
        connection, loop = transactions.caller_connection(), asyncio.get_running_loop()
        if connection is not None or (self._writer is not None and loop is not self._loop):
            async with self._pool.connection(connection) as conn:
                return await self._rows.insert(conn, job, blob)
        entry: Pending = (job, blob, loop.create_future())
        self._queued.append(entry)
        if self._writer is None:
            self._loop, self._writer = loop, loop.create_task(self._write_all())
        try:
            # Cancelling the caller cancels only its future: the writer task skips it and writes on.
            return await entry[2]
        except asyncio.CancelledError:
            if entry in self._queued:  # not taken into a statement yet: withdrawn
                self._queued.remove(entry)
            raise

    async def flush(self) -> None:
        """Wait until every enqueue handed in so far is written (or has failed)."""
        while self._writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._writer)

    async def _write_all(self) -> None:
        taken: list[Pending] = []
        try:
            while self._queued:
                taken = self._take()
                await self._write(taken)
        except asyncio.CancelledError:  # the writer itself was cancelled: the loop is closing
            for _, _, future in taken + self._queued:
                future.cancel()
            self._queued.clear()
            raise
        finally:
            self._writer = None

    def _take(self) -> list[Pending]:
        """The next statement's jobs: in order, unique keys, stopping before a key seen in it."""
        taken: list[Pending] = []
        keys: set[str] = set()
        for entry in self._queued:
            if len(taken) >= MAX_ENQUEUE_BATCH or entry[0].key in keys:
                break
            keys.add(entry[0].key)
            taken.append(entry)
        del self._queued[: len(taken)]
        return taken

    async def _write(self, taken: list[Pending]) -> None:
        try:
            inserted = await within(self._statement(taken), self._timeout)
        except Exception as exc:
            # asyncpg's DataError (a job's value that cannot be sent) is an InterfaceError and a ValueError
            if len(taken) == 1 or (isinstance(exc, self._unreachable) and not isinstance(exc, ValueError)):
                for _, _, future in taken:
                    if not future.done():
                        future.set_exception(exc)
                return
            logger.warning("a statement of %d enqueues failed (%r); writing them one by one", len(taken), exc)
            for entry in taken:
                await self._write([entry])
            return
        for job, _, future in taken:
            if not future.done():
                future.set_result(job.key in inserted)

    async def _statement(self, taken: list[Pending]) -> set[str]:
        async with self._pool.connection() as conn:
            if len(taken) == 1:
                job, blob, _ = taken[0]
                return {job.key} if await self._rows.insert(conn, job, blob) else set()
            self.statements += 1
            return await self._rows.insert_many(conn, [job for job, _, _ in taken], [b for _, b, _ in taken])
