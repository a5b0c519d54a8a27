"""Sweeping the asyncpg queue: the sweep lock on a connection of its own, and taking back swept jobs.

SAQ's ``PostgresQueue`` takes the sweep lock (a session advisory lock) on a pooled connection that goes
back to the pool, and only remembers that it has it. Here the connection stays with the lock until the
queue disconnects, and a termination listener notices when the lock went with a dead connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from saq.job import Job, Status

from litestar_saq.backends.asyncpg_pool import CONNECTION_ERRORS, is_alive
from litestar_saq.backends.waiting import is_terminal_status
from litestar_saq.liveness import DEQUEUED_BY, worker_died_on_this_host

if TYPE_CHECKING:
    from saq.queue import Queue

__all__ = ("SweepLock", "take_back")

logger = logging.getLogger("litestar_saq.asyncpg")


class SweepLock:
    """One queue's sweep lock, ``(keyspace, hashtext(queue name))`` as in SAQ, held until released."""

    def __init__(self, *, keyspace: int, queue_name: str) -> None:
        self._keyspace = keyspace
        self._queue_name = queue_name
        self._mutex = asyncio.Lock()
        self._connection: Any = None

    @contextlib.asynccontextmanager
    async def held(self, pool: Any) -> AsyncIterator[Any]:
        """Yield the connection holding the lock, taking the lock if it is free; ``None`` if it is not."""
        async with self._mutex:
            yield await self._take(pool)

    async def release(self, pool: Any) -> None:
        """Unlock, and give the lock's connection back to ``pool``."""
        async with self._mutex:
            connection, self._connection = self._connection, None
            if connection is None or not is_alive(connection):
                return  # a dead connection took its lock along and asyncpg released it already
            with contextlib.suppress(*CONNECTION_ERRORS):
                await connection.execute(
                    "SELECT pg_advisory_unlock($1, hashtext($2))", self._keyspace, self._queue_name
                )
            await pool.release(connection)

    async def _take(self, pool: Any) -> Any:
        connection = self._connection
        if connection is not None and is_alive(connection):
            return connection
        self._connection = None
        connection = await pool.acquire()
        try:
            locked = await connection.fetchval(
                "SELECT pg_try_advisory_lock($1, hashtext($2))", self._keyspace, self._queue_name
            )
        except BaseException:
            await pool.release(connection)
            raise
        if not locked:
            await pool.release(connection)
            return None
        connection.add_termination_listener(self._on_connection_lost)
        self._connection = connection
        return connection

    def _on_connection_lost(self, connection: Any) -> None:
        if self._connection is connection:
            logger.warning("queue %r: the connection holding the sweep lock was closed", self._queue_name)
            self._connection = None


async def take_back(queue: Queue, running: list[Job], abort_wait: float) -> list[str]:
    """Retry or abort the ``running`` jobs that are stuck or whose worker died; return their keys.

    A job whose worker was a process of this host that no longer exists goes back at once; SAQ alone
    waits for its timeout. A stuck job is aborted first and its worker gets ``abort_wait`` seconds to
    cancel it.
    """
    orphaned = [job for job in running if job.worker_id and worker_died_on_this_host(job.worker_id)]
    stuck = [job for job in running if job.stuck and job not in orphaned]
    for job in orphaned:
        # Nobody is left to cancel it, so it goes straight back (or ends). If the process died
        # before the Worker's start write, count the attempt the Worker had begun.
        if job.worker_id and job.worker_id.endswith("-" + DEQUEUED_BY):
            job.attempts += 1
        logger.warning("queue %r: job %s lost its worker %s", queue.name, job.key, job.worker_id)
        error = f"{queue.swept_error_message}: its worker {job.worker_id} died"
        await (
            queue.retry(job, error=error) if job.retryable else queue.finish(job, Status.ABORTED, error=error)
        )
    for job in stuck:
        logger.info("Sweeping %s", job.info(logger.isEnabledFor(logging.DEBUG)))
        await queue.abort(job, error=queue.swept_error_message)
    if stuck:
        # All stuck jobs' workers get the same ``abort_wait`` to cancel their tasks.
        with contextlib.suppress(asyncio.TimeoutError):
            await queue.listen([job.key for job in stuck], is_terminal_status, abort_wait, poll_interval=0.05)
    for job in stuck:
        with contextlib.suppress(RuntimeError):
            await job.refresh()
        if job.retryable:
            await queue.retry(job, error=queue.swept_error_message)
        else:
            await queue.finish(job, Status.ABORTED, error=queue.swept_error_message)
    return [job.key for job in orphaned + stuck]
