"""Group commit of finished jobs: the finishes that arrive while one write is under way go in the next.

A worker's slot awaits its job's finish until PostgreSQL has committed it, as before; what changes is
that the finishes of several slots share one statement and one commit. Nothing waits for a batch to
fill: the first finish is written at once, and the ones that arrive meanwhile (typically the other
slots of the same dequeue batch) form the next write. So a lone job is not delayed and a busy worker
writes a handful of finishes per commit.

A write that fails is retried job by job (so one bad row or a deadlock with a waiter's mark does not
fail its neighbours), unless PostgreSQL is unreachable: then every finish of the batch gets the error,
as each would have alone. A caller cancelled while waiting does not cancel the write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple

__all__ = ("MAX_BATCH", "FinishRow", "FinishWrites")

logger = logging.getLogger("litestar_saq.asyncpg")

MAX_BATCH = 200
"""Finishes per statement at most (a batch holds its rows' locks until it commits)."""


class FinishRow(NamedTuple):
    """One finished job as stored: ``blob`` ``None`` deletes the row (a job with a negative ttl)."""

    key: str
    blob: bytes | None
    status: str
    scheduled: int
    expire_at: int | None
    fence: bytes | None = None
    """The finishing worker's tokens (``liveness.fence_tokens``): stored only if the job is still its."""
    fence_process: bytes | None = None


class FinishWrites:
    """Write finishes in batches with ``write``; :meth:`flush` waits for every finish handed in.

    Args:
        write: stores a batch of finishes (keys unique) in one transaction.
        unreachable: the errors that mean PostgreSQL is gone (no job-by-job retry then).
    """

    def __init__(
        self,
        write: Callable[[Sequence[FinishRow]], Awaitable[None]],
        unreachable: tuple[type[BaseException], ...],
    ) -> None:
        self._write = write
        self._unreachable = unreachable
        self._pending: list[tuple[FinishRow, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.batches = 0
        """Statements written so far (for benchmarks and tests)."""

    async def finish(self, row: FinishRow) -> None:
        """Store ``row`` with the next batch and return once it is committed (or raise its error)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)
        self._pending.append((row, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain())
        await asyncio.shield(future)

    async def flush(self) -> None:
        """Wait until every finish handed in so far is written (or has failed)."""
        while self._writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._writer)

    async def _drain(self) -> None:
        batch: list[tuple[FinishRow, asyncio.Future[None]]] = []
        try:
            while self._pending:
                batch = self._next_batch()
                await self._store(batch)
        except asyncio.CancelledError:
            for _, future in batch + self._pending:
                future.cancel()  # the writer itself was cancelled (the loop is closing)
            self._pending.clear()
            raise
        finally:
            self._writer = None

    def _next_batch(self) -> list[tuple[FinishRow, asyncio.Future[None]]]:
        batch: list[tuple[FinishRow, asyncio.Future[None]]] = []
        keys: set[str] = set()
        for row, future in self._pending:
            if len(batch) >= MAX_BATCH or row.key in keys:
                break  # a key twice (finished, re-enqueued, finished again) goes in the next statement
            keys.add(row.key)
            batch.append((row, future))
        del self._pending[: len(batch)]
        return batch

    async def _store(self, batch: list[tuple[FinishRow, asyncio.Future[None]]]) -> None:
        self.batches += 1
        try:
            await self._write([row for row, _ in batch])
        except Exception as exc:
            if len(batch) == 1 or isinstance(exc, self._unreachable):
                for _, future in batch:
                    _settle(future, exc)
                return
            logger.warning("a batch of %d finishes failed (%r); writing them one by one", len(batch), exc)
            for row, future in batch:
                await self._store([(row, future)])
            return
        for _, future in batch:
            _settle(future, None)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def _retrieve(future: asyncio.Future[None]) -> None:
    """Mark a failed finish's error as seen: its caller may have been cancelled and never await it."""
    if not future.cancelled():
        future.exception()
