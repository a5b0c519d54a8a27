"""``AsyncpgQueue``: a SAQ queue on asyncpg that shares its tables with SAQ's psycopg ``PostgresQueue``.

Jobs, stats, schema version, advisory-lock keys and NOTIFY payloads match SAQ 0.26's ``PostgresQueue``, so
psycopg and asyncpg workers can serve one queue. On top of that it dequeues a batch per transaction
(``FOR UPDATE SKIP LOCKED``, one job per group, ungrouped jobs never held back), holds back the Worker's
start write until a short job has finished anyway, wakes waiting clients with a per-job notification,
survives its LISTEN backend being killed, keeps the sweep lock on a connection of its own, requeues
fetched-but-unstarted jobs on disconnect, and can enqueue inside the caller's transaction
(``enqueue(..., connection=conn)`` or :func:`enqueue_in_session`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from saq.job import Job, Status
from saq.utils import now, now_seconds

from litestar_saq.backends.asyncpg_base import CONNECTION_ERRORS, DEQUEUED_BY, is_alive
from litestar_saq.backends.asyncpg_waiting import AsyncpgWaitingQueue, is_terminal_status
from litestar_saq.liveness import worker_died_on_this_host

if TYPE_CHECKING:
    from litestar_saq.backends.asyncpg_schema import Executor

__all__ = ("AsyncpgQueue", "enqueue_in_session")

logger = logging.getLogger("litestar_saq.asyncpg")

ENQUEUE = "saq:enqueue"
NOT_GIVEN: Any = object()


async def enqueue_in_session(
    queue: AsyncpgQueue, session: Any, job_or_func: str | Job, **kwargs: Any
) -> Job | None:
    """Enqueue a job inside a SQLAlchemy ``AsyncSession``'s transaction (asyncpg driver only).

    The job row and its NOTIFY commit or roll back with the session.
    """
    connection = await session.connection()
    driver_connection = (await connection.get_raw_connection()).driver_connection
    if not driver_connection.is_in_transaction():
        # SQLAlchemy sends BEGIN lazily, with its first statement: send one so the job joins it.
        await connection.exec_driver_sql("SELECT 1")
    return await queue.enqueue(job_or_func, connection=driver_connection, **kwargs)


class AsyncpgQueue(AsyncpgWaitingQueue):
    """A SAQ queue on asyncpg, table-compatible with SAQ's ``PostgresQueue``.

    See :class:`~litestar_saq.backends.asyncpg_base.AsyncpgQueueBase` for the options.
    """

    async def disconnect(self) -> None:
        """Requeue buffered jobs, drop the listener and sweep lock, and close the pool if it is ours."""
        if not self._connected:
            return
        self._connected = False
        if self._listener is not None:
            await self._listener.stop()
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task
        await self._starts.flush()
        await self._requeue_buffered()
        async with self._sweep_lock:
            await self._drop_sweep_lock()
        if self._manage_pool:
            try:
                await asyncio.wait_for(self.pool.close(), 10)
            except asyncio.TimeoutError:
                self.pool.terminate()
            if self.url is not None:
                self.pool = None

    async def _requeue_buffered(self) -> None:
        jobs: list[Job] = []
        while not self._job_queue.empty():
            jobs.append(self._job_queue.get_nowait())
        if not jobs:
            return
        for job in jobs:
            self._starts.forget(job.key)
            job.status, job.started, job.touched = Status.QUEUED, 0, 0
        async with self.pool.acquire() as connection:
            await connection.execute(
                self._sql.requeue,
                [j.key for j in jobs],
                [self.serialize(j) for j in jobs],
                self.name,
                self._channel,
            )
        logger.info("queue %r: requeued %d jobs fetched but never started", self.name, len(jobs))

    # -- dequeue ---------------------------------------------------------------------------------

    async def dequeue(self, timeout: float = 0.0, poll_interval: float = 0.0) -> Job | None:
        """Return the next due job, marked active, or ``None`` after ``timeout`` seconds (0: forever).

        Without ``poll_interval`` the queue waits on LISTEN/NOTIFY, with a slow safety-net poll.
        """
        if not self._connected:
            raise RuntimeError(f"queue {self.name!r} is not connected; await queue.connect() first")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout > 0 else None
        poll_every = poll_interval if poll_interval > 0 else self.fallback_poll_interval
        if poll_interval <= 0 and self._listener is not None:
            await self._listener.subscribe(self._channel, self._on_queue_notice)
        self._waiting += 1
        try:
            arriving = True
            while self._connected:
                # Fetch on arrival, then about once per poll period between all waiters.
                stale = loop.time() - self._last_fetch >= poll_every * 0.9
                if self._job_queue.empty() and (arriving or stale):
                    await self._fetch()
                arriving = False
                wait = poll_every if deadline is None else min(poll_every, deadline - loop.time())
                if wait <= 0:
                    # A fetch still under way may have marked a job active for this caller: take it.
                    async with self._fetch_lock:
                        pass
                    return None if self._job_queue.empty() else self._job_queue.get_nowait()
                with contextlib.suppress(asyncio.TimeoutError):
                    return await asyncio.wait_for(self._job_queue.get(), wait)
        finally:
            self._waiting -= 1
        return None

    def _on_queue_notice(self, payload: str) -> None:
        if payload == ENQUEUE and self._waiting > self._job_queue.qsize():
            self._spawn_fetch()

    def _on_listening(self) -> None:
        self._spawn_fetch()

    def _spawn_fetch(self) -> None:
        if not self._connected:
            return
        if self._fetch_lock.locked():
            self._fetch_again = True
            return
        task = asyncio.create_task(self._fetch())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def schedule(self, lock: int = 1) -> list[str]:
        """Fetch jobs that became due for waiting callers (the Worker calls this every second)."""
        await self._fetch()
        return []

    async def _fetch(self) -> None:
        if self._fetch_lock.locked():
            self._fetch_again = True
            return
        async with self._fetch_lock:
            while self._connected:
                self._fetch_again = False
                wanted = self._waiting - self._job_queue.qsize()
                if wanted <= 0:
                    return
                # Shielded: once rows are marked active they must reach the buffer, even if the
                # waiting caller is cancelled meanwhile (disconnect requeues what nobody took).
                task = asyncio.ensure_future(self._fetch_batch(wanted))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                got = await asyncio.shield(task)
                self._last_fetch = asyncio.get_running_loop().time()
                if got < wanted and not self._fetch_again:
                    return

    async def _fetch_batch(self, wanted: int) -> int:
        """Mark up to ``wanted`` due jobs active in one transaction and buffer them; return how many."""
        async with self.pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(
                self._sql.dequeue_select, self.name, int(now_seconds()), *self._priorities, wanted
            )
            if not rows:
                return 0
            started = now()
            groups: set[str] = set()
            jobs: list[Job] = []
            blobs: list[bytes] = []
            for key, blob, group_key in rows:
                if group_key is not None:
                    if group_key in groups:
                        continue  # one job per group, so a group never runs two at once
                    groups.add(group_key)
                job = self.deserialize(blob, Status.ACTIVE)
                assert job is not None, key
                job.started = job.touched = started
                job.worker_id = self._dequeuer_id
                blobs.append(self.serialize(job))
                self._starts.dequeued(job)
                jobs.append(job)
            await connection.execute(self._sql.dequeue_mark, [job.key for job in jobs], blobs)
        for job in jobs:
            self._job_queue.put_nowait(job)
        return len(jobs)

    # -- writes ----------------------------------------------------------------------------------

    async def _update(self, job: Job, status: Status | None = None, **kwargs: Any) -> None:
        expire_at = kwargs.pop("expire_at", NOT_GIVEN)
        connection: Executor | None = kwargs.pop("connection", None)
        if (
            status == Status.ACTIVE
            and expire_at is NOT_GIVEN
            and connection is None
            and self._starts.defer(job)
        ):
            return
        self._starts.forget(job.key)
        scheduled = int(job.scheduled)
        async with self._connection(connection) as conn:
            if status is None:
                await conn.execute(
                    self._sql.update_keep_status, self.serialize(job), scheduled, job.key, self.name
                )
            elif status == Status.QUEUED:
                await conn.fetch(
                    self._sql.update_queued,
                    self.serialize(job),
                    scheduled,
                    job.key,
                    self.name,
                    self._channel,
                    int(now_seconds()),
                )
            elif expire_at is NOT_GIVEN:
                await conn.execute(
                    self._sql.update, self.serialize(job), Status(status).value, scheduled, job.key, self.name
                )
            else:
                expire = None if expire_at is None else int(expire_at)
                await conn.execute(
                    self._sql.update_expire,
                    self.serialize(job),
                    Status(status).value,
                    scheduled,
                    job.key,
                    self.name,
                    expire,
                )

    async def _retry(self, job: Job, error: str | None) -> None:
        delay = job.next_retry_delay()
        scheduled = time.time() + delay if delay else job.scheduled or now_seconds()
        await self.update(job, status=Status.QUEUED, scheduled=int(scheduled), expire_at=None)

    async def _finish(
        self,
        job: Job,
        status: Status,
        *,
        result: Any = None,
        error: str | None = None,
        connection: Executor | None = None,
    ) -> None:
        self._starts.forget(job.key)
        async with self._connection(connection) as conn:
            if job.ttl < 0:
                await conn.fetch(self._sql.delete, job.key, self.name, self._done_channel, self._channel)
                return
            job.touched = now()
            expire_at = int(now_seconds() + job.ttl) if job.ttl > 0 else None
            await conn.fetch(
                self._sql.finish,
                self.serialize(job),
                Status(status).value,
                int(job.scheduled),
                job.key,
                self.name,
                expire_at,
                self._done_channel,
                self._channel,
            )

    async def abort(self, job: Job, error: str, ttl: float = 5) -> None:
        """Abort ``job``: a queued job ends as aborted at once, a running one becomes aborting."""
        async with self._connection() as connection, connection.transaction():
            status = await self.get_job_status(job.key, for_update=True, connection=connection)
            if status is None or status == Status.QUEUED:
                await self.finish(job, Status.ABORTED, error=error, connection=connection)
            else:
                await self.update(job, status=Status.ABORTING, error=error, connection=connection)

    # -- sweeping --------------------------------------------------------------------------------

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        """Delete expired jobs and stats; retry or abort stuck jobs and jobs whose worker died.

        Runs only in the queue that holds the sweep lock. A running job whose worker was a process of
        this host that no longer exists is taken back at once; SAQ alone waits for its timeout.
        """
        await self._starts.flush()  # so this sweep sees every start this process knows of
        async with self._sweep_lock:
            connection = await self._take_sweep_lock()
            if connection is None:
                return []
            now_ts = int(now_seconds())
            await connection.execute(self._sql.sweep_jobs, self.name, now_ts)
            await connection.execute(self._sql.sweep_stats, now_ts)
            rows = await connection.fetch(self._sql.stuck_candidates, self.name)
        jobs = [job for job in (self.deserialize(blob, status) for _key, blob, status in rows) if job]
        orphaned = [job for job in jobs if job.worker_id and worker_died_on_this_host(job.worker_id)]
        stuck = [job for job in jobs if job.stuck and job not in orphaned]
        for job in orphaned:
            # Its worker is gone: nobody is left to cancel, so it goes straight back (or ends). If the
            # process died before the Worker's start write, count the attempt the Worker had begun.
            if job.worker_id and job.worker_id.endswith("-" + DEQUEUED_BY):
                job.attempts += 1
            logger.warning("queue %r: job %s lost its worker %s", self.name, job.key, job.worker_id)
            error = f"{self.swept_error_message}: its worker {job.worker_id} died"
            await (
                self.retry(job, error=error)
                if job.retryable
                else self.finish(job, Status.ABORTED, error=error)
            )
        for job in stuck:
            logger.info("Sweeping %s", job.info(logger.isEnabledFor(logging.DEBUG)))
            await self.abort(job, error=self.swept_error_message)
        if stuck:
            # Give the owning workers ``abort`` seconds to cancel their tasks, all jobs at once.
            with contextlib.suppress(asyncio.TimeoutError):
                await self.listen([job.key for job in stuck], is_terminal_status, abort, poll_interval=0.05)
        for job in stuck:
            with contextlib.suppress(RuntimeError):
                await job.refresh()
            if job.retryable:
                await self.retry(job, error=self.swept_error_message)
            else:
                await self.finish(job, Status.ABORTED, error=self.swept_error_message)
        return [job.key for job in orphaned + stuck]

    async def _take_sweep_lock(self) -> Any:
        """Return the connection holding this queue's sweep lock, taking it if free; else ``None``."""
        connection = self._lock_connection
        if connection is not None and is_alive(connection):
            return connection
        self._lock_connection = None
        connection = await self.pool.acquire()
        try:
            locked = await connection.fetchval(
                "SELECT pg_try_advisory_lock($1, hashtext($2))", self.saq_lock_keyspace, self.name
            )
        except BaseException:
            await self.pool.release(connection)
            raise
        if not locked:
            await self.pool.release(connection)
            return None
        connection.add_termination_listener(self._on_lock_connection_lost)
        self._lock_connection = connection
        return connection

    def _on_lock_connection_lost(self, connection: Any) -> None:
        if self._lock_connection is connection:
            logger.warning("queue %r: the connection holding the sweep lock was closed", self.name)
            self._lock_connection = None

    async def _drop_sweep_lock(self) -> None:
        connection, self._lock_connection = self._lock_connection, None
        if connection is None or not is_alive(connection):
            return  # a dead connection took its lock along and asyncpg released it already
        with contextlib.suppress(*CONNECTION_ERRORS):
            await connection.execute(
                "SELECT pg_advisory_unlock($1, hashtext($2))", self.saq_lock_keyspace, self.name
            )
        await self.pool.release(connection)
