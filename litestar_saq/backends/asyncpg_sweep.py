"""Sweeping the asyncpg queue: the sweep lock on a connection of its own, and taking back swept jobs.

SAQ's ``PostgresQueue`` takes the sweep lock (a session advisory lock) on a pooled connection that goes
back to the pool, and only remembers that it has it. Here the connection stays with the lock until the
queue disconnects, and a termination listener notices when the lock went with a dead connection.

A running job is taken back, as on Redis (``redis_recovery.OrphanJudge``, the same judge), when its
worker process is gone from this host, or when its worker's stats row (written every
``timers["worker_info"]`` seconds, kept ``worker_info + 1`` seconds) has expired and stayed expired for
``orphan_grace_s``: a worker on another host that was killed, frozen or cut off. A live worker, however
slow its jobs, keeps its stats fresh and keeps its jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from saq.job import Job, Status

from litestar_saq.backends.asyncpg_pool import CONNECTION_ERRORS, is_alive
from litestar_saq.backends.redis_recovery import OrphanJudge, Verdict
from litestar_saq.backends.waiting import is_terminal_status
from litestar_saq.liveness import (
    DEQUEUED_BY,
    live_process_ids,
    worker_died_on_this_host,
    worker_lives_on_this_host,
)

if TYPE_CHECKING:
    from saq.queue import Queue

__all__ = ("SILENT_PEER_SETTINGS", "SweepLock", "take_back")

logger = logging.getLogger("litestar_saq.asyncpg")

SILENT_PEER_SETTINGS = (
    "SET tcp_keepalives_idle = 2; SET tcp_keepalives_interval = 1; SET tcp_keepalives_count = 3;"
    " SET tcp_user_timeout = 5000"
)
"""Session settings of the sweep lock's connection: PostgreSQL drops it ~5 s after its peer goes silent."""


class SweepLock:
    """One queue's sweep lock, ``(keyspace, hashtext(queue name))`` as in SAQ, held until released."""

    def __init__(self, *, keyspace: int, queue_name: str, orphan_grace_s: float = 5.0) -> None:
        self._keyspace = keyspace
        self._queue_name = queue_name
        self._mutex = asyncio.Lock()
        self._connection: Any = None
        self._judge = OrphanJudge(grace_s=orphan_grace_s)

    async def take_back(self, queue: Queue, running: list[Job], abort_wait: float) -> list[str]:
        """:func:`take_back` with the suspects this lock's holder remembers from earlier sweeps."""
        return await take_back(queue, running, abort_wait, self._judge)

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
            if locked:
                await self._drop_when_silent(connection)
        except BaseException:
            await pool.release(connection)
            raise
        if not locked:
            await pool.release(connection)
            return None
        connection.add_termination_listener(self._on_connection_lost)
        self._connection = connection
        return connection

    async def _drop_when_silent(self, connection: Any) -> None:
        """Have PostgreSQL end this session (and so free the lock) once its host stops answering.

        A host cut off or powered off sends no FIN: without TCP keepalives PostgreSQL would keep the
        session, and the lock with it, for hours (the kernel's default), and no other worker would
        sweep. With these the lock is free ~5 s after its holder goes silent (TCP sessions only).
        """
        try:
            await connection.execute(SILENT_PEER_SETTINGS)
        except CONNECTION_ERRORS as error:
            if not is_alive(connection):
                raise
            # An old server without tcp_user_timeout, or settings refused: sweep all the same.
            logger.warning("queue %r: sweep lock session without keepalives: %s", self._queue_name, error)

    def _on_connection_lost(self, connection: Any) -> None:
        if self._connection is connection:
            logger.warning("queue %r: the connection holding the sweep lock was closed", self._queue_name)
            self._connection = None


async def take_back(
    queue: Queue, running: list[Job], abort_wait: float, judge: OrphanJudge | None = None
) -> list[str]:
    """Retry or abort the ``running`` jobs that are stuck or whose worker died; return their keys.

    A job whose worker was a process of this host that no longer exists goes back at once; one whose
    worker's stats expired goes back once ``judge`` has suspected it for its grace period (SAQ alone
    waits for the job's timeout). A stuck job is aborted first and its worker gets ``abort_wait``
    seconds to cancel it.
    """
    verdicts = await _judge_all(queue, running, judge or OrphanJudge())
    orphaned = [job for job in running if verdicts[job.key] is Verdict.ORPHANED]
    stuck = [job for job in running if verdicts[job.key] is Verdict.STUCK]
    for job in orphaned:
        # Nobody is left to cancel it, so it goes straight back (or ends). If the process died
        # before the Worker's start write, count the attempt the Worker had begun.
        if job.worker_id and job.worker_id.endswith("-" + DEQUEUED_BY):
            job.attempts += 1
        logger.warning("queue %r: job %s lost its worker %s", queue.name, job.key, job.worker_id)
        gone = "died" if worker_died_on_this_host(job.worker_id or "") else "sent no stats (dead or cut off)"
        # Not naming the worker: a stored job that holds a worker's id counts as still its (the fence).
        error = f"{queue.swept_error_message}: its worker {gone}"
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


async def _judge_all(queue: Queue, running: list[Job], judge: OrphanJudge) -> dict[str, Verdict]:
    judge.forget_all_but({job.key for job in running})
    # A process of this host is looked up; only its stats tell whether one of another host lives.
    live = {job.worker_id for job in running if job.worker_id and worker_lives_on_this_host(job.worker_id)}
    if any(job.worker_id and _process_on_another_host(job.worker_id) for job in running):
        live |= live_process_ids(set((await queue.info())["workers"]))
    return {job.key: judge.judge(job.key, job, live) for job in running}


def _process_on_another_host(worker_id: str) -> bool:
    return not worker_lives_on_this_host(worker_id) and not worker_died_on_this_host(worker_id)
