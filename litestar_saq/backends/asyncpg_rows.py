"""One queue's rows in SAQ's Postgres tables: each statement of :class:`QueueSQL` with its arguments.

The queue decides what to write and when; this module only knows which statement does it and in what
order its parameters go. Every method runs on the connection it is given.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

from saq.job import Job, Status
from saq.utils import now_seconds

from litestar_saq.backends.asyncpg_listener import channel_name
from litestar_saq.exceptions import InvalidValueError
from litestar_saq.liveness import fence_tokens

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from saq.types import QueueInfo, WorkerInfo

    from litestar_saq.backends.asyncpg_finish_writes import FinishRow
    from litestar_saq.backends.asyncpg_schema import Executor, QueueSQL

__all__ = ("NOT_GIVEN", "QueueRows", "StoredJob")

NOT_GIVEN: Any = object()
"""``expire_at`` left as it is stored."""
StoredJob = tuple[bytes, str]
"""A job's serialised blob and its status column."""
Connect = Callable[[], "AbstractAsyncContextManager[Executor]"]
"""Lends a pooled connection."""


class QueueRows:
    """The rows of queue ``queue_name`` and its workers, read and written with ``sql``'s statements.

    Args:
        sql: the statements for the queue's tables.
        queue_name: the queue.
    """

    def __init__(self, sql: QueueSQL, *, queue_name: str) -> None:
        self._sql = sql
        self._queue = queue_name
        self.channel = channel_name(f"saq:{queue_name}")
        """The queue's NOTIFY channel: ``saq:enqueue`` payloads, as SAQ's ``PostgresQueue`` sends."""
        self.done_channel = channel_name(f"saq-done:{queue_name}")
        """The channel of finish notifications: the keys of finished jobs that a caller waits for."""

    async def insert(self, conn: Executor, job: Job, blob: bytes) -> bool:
        """Insert ``job`` (or replace its finished predecessor) and notify; ``False`` for a duplicate."""
        group_key = None if job.group_key is None else str(job.group_key)
        scheduled = int(job.scheduled or now_seconds())
        rows = await conn.fetch(
            self._sql.enqueue,
            job.key,
            blob,
            self._queue,
            job.status.value,
            job.priority,
            group_key,
            scheduled,
            self.channel,
        )
        return bool(rows)

    async def insert_many(self, conn: Executor, jobs: Sequence[Job], blobs: Sequence[bytes]) -> set[str]:
        """Insert ``jobs`` (keys unique) as ``insert`` does, in one statement; the keys inserted."""
        inserted = await conn.fetchval(
            self._sql.enqueue_many,
            [job.key for job in jobs],
            blobs,
            self._queue,
            [job.priority for job in jobs],
            [None if job.group_key is None else str(job.group_key) for job in jobs],
            [int(job.scheduled or now_seconds()) for job in jobs],
            self.channel,
        )
        return set(inserted or ())

    async def due(
        self, conn: Executor, priorities: tuple[int, int], limit: int
    ) -> list[tuple[str, bytes, Any]]:
        """Lock up to ``limit`` due ``(key, blob, group_key)`` rows, skipping rows other fetches locked."""
        rows = await conn.fetch(self._sql.dequeue_select, self._queue, int(now_seconds()), *priorities, limit)
        return [(row[0], row[1], row[2]) for row in rows]

    async def mark_active(self, conn: Executor, keys: list[str], blobs: list[bytes]) -> None:
        """Store the given jobs as active, with their new blobs."""
        await conn.execute(self._sql.dequeue_mark, keys, blobs)

    async def requeue(self, conn: Executor, keys: list[str], blobs: list[bytes]) -> None:
        """Put active jobs back to queued, with their new blobs, and notify workers."""
        await conn.execute(self._sql.requeue, keys, blobs, self._queue, self.channel)

    async def job(self, conn: Executor, key: str) -> StoredJob | None:
        """The stored job ``key``, or ``None``."""
        row = await conn.fetchrow(self._sql.job, key, self._queue)
        return None if row is None else (row[0], row[1])

    async def jobs(self, conn: Executor, keys: list[str]) -> dict[str, StoredJob]:
        """The stored jobs among ``keys``, by key."""
        return {row[0]: (row[1], row[2]) for row in await conn.fetch(self._sql.jobs, keys, self._queue)}

    async def scan(
        self, connect: Connect, statuses: Sequence[Status], batch_size: int
    ) -> AsyncIterator[StoredJob]:
        """Yield the jobs with ``statuses`` in key order, on a fresh connection for each batch."""
        values, last_key = [Status(status).value for status in statuses], ""
        while True:
            async with connect() as conn:
                rows = await conn.fetch(self._sql.iter_jobs, values, self._queue, last_key, batch_size)
            if not rows:
                return
            for key, blob, status in rows:
                last_key = key
                yield blob, status

    async def count(self, conn: Executor, kind: str) -> int:
        """How many jobs are ``queued`` (and due), ``active`` or ``incomplete``."""
        index = {"queued": 0, "active": 1, "incomplete": 2}.get(kind)
        if index is None:
            raise InvalidValueError(f"Can't count unknown type {kind}")
        return (await self.counts(conn))[index]

    async def counts(self, conn: Executor) -> tuple[int, int, int]:
        """How many jobs are queued and due, active, and incomplete."""
        row = await conn.fetchrow(self._sql.counts, self._queue, int(now_seconds()))
        return int(row[0]), int(row[1]), int(row[2])

    async def info(
        self, conn: Executor, offset: int, limit: int, decode: Callable[[bytes, str], Job | None]
    ) -> QueueInfo:
        """The queue's live workers, counts and up to ``limit`` incomplete jobs, decoded by ``decode``."""
        workers: dict[str, WorkerInfo] = {
            worker_id: {
                "stats": json.loads(stats) if stats else None,
                "queue_key": queue_key,
                "metadata": json.loads(metadata) if metadata else None,
            }
            for worker_id, stats, queue_key, metadata in await conn.fetch(self._sql.workers, self._queue)
        }
        queued, active, incomplete = await self.counts(conn)
        stored = await conn.fetch(self._sql.incomplete_jobs, self._queue, offset, limit) if limit else []
        return {
            "workers": workers,
            "name": self._queue,
            "queued": queued,
            "active": active,
            "scheduled": incomplete - queued - active,
            "jobs": [job.to_dict() for job in (decode(row[0], row[1]) for row in stored) if job],
        }

    async def write_worker(self, conn: Executor, worker_id: str, info: WorkerInfo, ttl: int) -> None:
        """Upsert a worker's stats row, expiring ``ttl`` seconds from the server's clock."""
        stats, metadata = json.dumps(info["stats"]), json.dumps(info["metadata"])
        await conn.execute(self._sql.write_worker, worker_id, stats, info["queue_key"], metadata, int(ttl))

    async def status(self, conn: Executor, key: str, *, for_update: bool = False) -> Status | None:
        """The stored status of job ``key`` (row-locked with ``for_update``), or ``None``."""
        sql = self._sql.status_for_update if for_update else self._sql.job_status
        status = await conn.fetchval(sql, key, self._queue)
        return None if status is None else Status(status)

    async def mark_waited(self, conn: Executor, keys: list[str]) -> None:
        """Have the finish of the unfinished jobs among ``keys`` notify the done channel."""
        await conn.execute(self._sql.mark_waited, keys, self._queue, self.channel)

    async def store_start(self, conn: Executor, job: Job, blob: bytes) -> None:
        """Store a running job's blob, unless a finish, retry or abort was stored meanwhile."""
        await conn.execute(self._sql.store_start, blob, job.key, self._queue, *fence_tokens(job.worker_id))

    async def update(
        self, conn: Executor, job: Job, blob: bytes, status: Status | None, expire_at: Any = NOT_GIVEN
    ) -> None:
        """Store ``blob`` and ``status`` (``None``: keep the stored one); back to QUEUED notifies when due."""
        scheduled = int(job.scheduled)
        if status is None:
            fence = fence_tokens(job.worker_id)
            await conn.execute(self._sql.update_keep_status, blob, scheduled, job.key, self._queue, *fence)
        elif status == Status.QUEUED:
            due_by = int(now_seconds())
            fence = fence_tokens(job.worker_id)
            await conn.fetch(
                self._sql.update_queued, blob, scheduled, job.key, self._queue, self.channel, due_by, *fence
            )
        elif expire_at is NOT_GIVEN:
            await conn.execute(self._sql.update, blob, Status(status).value, scheduled, job.key, self._queue)
        else:
            expire = None if expire_at is None else int(expire_at)
            value = Status(status).value
            await conn.execute(self._sql.update_expire, blob, value, scheduled, job.key, self._queue, expire)

    async def finish_many(self, conn: Executor, rows: Sequence[FinishRow]) -> None:
        """Store (or, without a blob, delete) finished jobs with unique keys, as ``finish`` does each."""
        await conn.fetch(
            self._sql.finish_many,
            [row.key for row in rows],
            [row.blob for row in rows],
            [row.status for row in rows],
            [row.scheduled for row in rows],
            [row.expire_at for row in rows],
            self._queue,
            self.done_channel,
            self.channel,
            [row.fence for row in rows],
            [row.fence_process for row in rows],
        )

    async def sweep(self, conn: Executor) -> list[StoredJob]:
        """Delete expired jobs and stats; return the running (active or aborting) jobs to check."""
        now_ts = int(now_seconds())
        await conn.execute(self._sql.sweep_jobs, self._queue, now_ts)
        await conn.execute(self._sql.sweep_stats, now_ts)
        return [(row[1], row[2]) for row in await conn.fetch(self._sql.stuck_candidates, self._queue)]
