"""``AsyncpgQueue``: a SAQ queue on asyncpg that shares its tables with SAQ's psycopg ``PostgresQueue``.

Jobs, stats, schema version, advisory-lock keys and NOTIFY payloads match SAQ 0.26's ``PostgresQueue``, so
psycopg and asyncpg workers can serve one queue. What it does beyond SAQ lives in the ``asyncpg_*`` modules
next to this one: batch dequeues (``fetcher``), held-back start writes (``starts``), finishes of several
slots in one statement (``finish_writes``), concurrent enqueues in one statement (``enqueue_writes``),
per-job finish notifications (``finishes``), a LISTEN connection that survives its backend (``listener``),
the sweep lock on its own connection (``sweep``) and enqueues in the caller's transaction (``transactions``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from saq.job import Job, Status
from saq.utils import now, now_seconds

from litestar_saq.backends import asyncpg_transactions as transactions
from litestar_saq.backends.asyncpg_bulk import BulkInserts
from litestar_saq.backends.asyncpg_enqueue_writes import EnqueueWrites
from litestar_saq.backends.asyncpg_fetcher import JobFetcher
from litestar_saq.backends.asyncpg_finish_writes import FinishRow, FinishWrites
from litestar_saq.backends.asyncpg_finishes import FinishNotices, call_until_done
from litestar_saq.backends.asyncpg_listener import NotificationListener
from litestar_saq.backends.asyncpg_loop import on_queue_loop
from litestar_saq.backends.asyncpg_migrations import migrate
from litestar_saq.backends.asyncpg_pool import BROKER_DOWN_ERRORS, QueuePool, is_asyncpg_connection
from litestar_saq.backends.asyncpg_rows import NOT_GIVEN, QueueRows
from litestar_saq.backends.asyncpg_schema import Executor, QueueSQL
from litestar_saq.backends.asyncpg_starts import DeferredStarts
from litestar_saq.backends.asyncpg_sweep import SweepLock
from litestar_saq.backends.waiting import WaitsOnChanges, WatchJobs
from litestar_saq.exceptions import UsageError
from litestar_saq.liveness import fence_tokens

if TYPE_CHECKING:
    from saq.types import CountKind, DumpType, ListenCallback, LoadType, QueueInfo, WorkerInfo

__all__ = ("AsyncpgQueue", "enqueue_in_session")

enqueue_in_session = transactions.enqueue_in_session

logger = logging.getLogger("litestar_saq.asyncpg")

QueueT = TypeVar("QueueT", bound="AsyncpgQueue")


class AsyncpgQueue(BulkInserts, WaitsOnChanges):
    """A SAQ queue on asyncpg, table-compatible with SAQ's ``PostgresQueue``.

    Args:
        pool: an initialised ``asyncpg.Pool`` to use; it is never closed unless ``manage_pool_lifecycle``.
        url: a ``postgresql://`` DSN; the pool is created in :meth:`connect` and closed in :meth:`disconnect`.
        name: the queue's name.
        versions_table: the table holding SAQ's schema version.
        jobs_table: the jobs table.
        stats_table: the worker stats table.
        dump: serialises a job dict to ``str`` or ``bytes`` (default ``json.dumps``).
        load: the inverse of ``dump``.
        min_size, max_size: the pool's sizes; concurrency + 3 never waits (listener, sweep lock, one more).
        saq_lock_keyspace: first key of SAQ's advisory locks (migrations, sweeping).
        priorities: the inclusive range of priorities this queue dequeues.
        swept_error_message: the error given to swept jobs.
        manage_pool_lifecycle: whether connect/disconnect open and close the pool; default: only our own.
        fallback_poll_interval: seconds between safety-net polls while waiting on notifications.
        connect_timeout: seconds to wait for a connection.
        migration_timeout: seconds to wait for another session's migration.
        pool_options: more keyword arguments for ``asyncpg.create_pool`` (``server_settings``, ``ssl``...).
        listen_dsn: a direct DSN for LISTEN and the sweep lock when ``url`` is PgBouncer (see QueuePool).
        orphan_grace_s: seconds a running job's worker must have had no fresh stats (a worker of
            another host killed or cut off) before the sweep takes the job back.
    """

    @classmethod
    def from_url(cls: type[QueueT], url: str, **kwargs: Any) -> QueueT:
        """Create a queue that owns a pool for ``url``, created in :meth:`connect`."""
        return cls(url=url, **kwargs)

    def __init__(
        self,
        pool: Any = None,
        url: str | None = None,
        name: str = "default",
        versions_table: str = "saq_versions",
        jobs_table: str = "saq_jobs",
        stats_table: str = "saq_stats",
        dump: DumpType | None = None,
        load: LoadType | None = None,
        min_size: int = 4,
        max_size: int = 20,
        saq_lock_keyspace: int = 0,
        priorities: tuple[int, int] = (0, 32767),
        swept_error_message: str | None = None,
        manage_pool_lifecycle: bool | None = None,
        fallback_poll_interval: float = 1.0,
        connect_timeout: float = 10.0,
        migration_timeout: float = 30.0,
        pool_options: Mapping[str, Any] | None = None,
        listen_dsn: str | None = None,
        orphan_grace_s: float = 5.0,
    ) -> None:
        super().__init__(name=name, dump=dump, load=load, swept_error_message=swept_error_message)
        self._pool = QueuePool(
            pool, url, name, manage_pool_lifecycle, (min_size, max_size), connect_timeout, pool_options or {}
        )
        self._pool.open_sessions_on(listen_dsn)
        self.url, self.min_size, self.max_size = url, min_size, max_size
        self.versions_table, self.jobs_table, self.stats_table = versions_table, jobs_table, stats_table
        self.saq_lock_keyspace = saq_lock_keyspace
        self.fallback_poll_interval = fallback_poll_interval
        self._priorities = priorities
        self._migrate = functools.partial(
            migrate,
            versions_table=versions_table,
            jobs_table=jobs_table,
            stats_table=stats_table,
            lock_keyspace=saq_lock_keyspace,
            deadline_s=migration_timeout,
        )
        self._rows = QueueRows(QueueSQL.for_tables(jobs_table, stats_table), queue_name=name)
        self._starts = DeferredStarts(self._store_start, name)
        self._finishes = FinishNotices(self._rows.done_channel, self._mark_waited)
        self._finishes_written = FinishWrites(self._write_finishes, BROKER_DOWN_ERRORS)
        self._enqueues = EnqueueWrites(self._pool, self._rows, BROKER_DOWN_ERRORS, connect_timeout)
        self._sweep_lock = SweepLock(
            keyspace=saq_lock_keyspace, queue_name=name, orphan_grace_s=orphan_grace_s
        )
        # Made by connect() on the connected pool, dropped by disconnect().
        self._listener: NotificationListener | None = None
        self._fetcher: JobFetcher | None = None

    @property
    def pool(self) -> Any:
        """The ``asyncpg.Pool`` in use: the one given, or the queue's own once connected (else ``None``)."""
        return self._pool.pool

    # -- lifecycle -------------------------------------------------------------------------------
    async def connect(self) -> None:
        """Create the pool if this queue owns one, and migrate the tables to SAQ's schema version 3."""
        if self._fetcher is not None:
            return
        pool, sessions = await self._pool.open(self._migrate)
        fetcher = JobFetcher(
            pool, self, self._rows, self._starts, self._priorities, self.fallback_poll_interval
        )
        # A (re)established LISTEN connection may have missed notifications: fetch then.
        self._listener = NotificationListener(sessions, queue_name=self.name, on_listening=fetcher.fetch_soon)
        self._fetcher = fetcher
        await super().connect()

    async def disconnect(self) -> None:
        """Requeue buffered jobs, drop the listener and sweep lock, and close the pool if it is ours."""
        fetcher, self._fetcher = self._fetcher, None
        if fetcher is None:
            return
        if self._listener is not None:
            await self._listener.stop()
        await fetcher.stop()
        await self._enqueues.flush()
        await self._starts.flush()
        await self._finishes_written.flush()
        await self._sweep_lock.release(self._pool.sessions)
        await self._pool.close()

    def serialize(self, job: Job) -> bytes:
        """Serialise ``job`` to the bytes stored in the ``job BYTEA`` column."""
        serialized = super().serialize(job)
        return serialized.encode() if isinstance(serialized, str) else serialized

    # -- enqueue ---------------------------------------------------------------------------------
    async def enqueue(self, job_or_func: str | Job, **kwargs: Any) -> Job | None:
        """Enqueue a job; pass ``connection=`` (an asyncpg connection) to write it in your transaction."""
        connection = kwargs.get("connection")
        if connection is None or not is_asyncpg_connection(connection):
            return await self._enqueue_on_pool(job_or_func, **kwargs)
        del kwargs["connection"]
        with transactions.on_caller_connection(connection):
            return await super().enqueue(job_or_func, **kwargs)

    async def _enqueue_on_pool(self, job_or_func: str | Job, **kwargs: Any) -> Job | None:
        """Enqueue on a pooled connection, failing within ``connect_timeout`` if PostgreSQL is gone."""
        function = job_or_func if isinstance(job_or_func, str) else job_or_func.function
        return await self._pool.answer(
            super().enqueue(job_or_func, **kwargs), f"could not enqueue {function!r}"
        )

    async def _enqueue(self, job: Job) -> Job | None:
        if not await self._enqueues.insert(job, self.serialize(job)):  # with concurrent ones: one statement
            return None
        if logger.isEnabledFor(logging.INFO):
            logger.info("Enqueuing %s", job.info(logger.isEnabledFor(logging.DEBUG)))
        return job

    # -- reads -----------------------------------------------------------------------------------
    @on_queue_loop
    async def job(self, job_key: str) -> Job | None:
        """Return this queue's job ``job_key``, or ``None``."""
        async with self._pool.connection() as connection:
            stored = await self._rows.job(connection, job_key)
        return None if stored is None else self._starts.overlay(self.deserialize(*stored))

    async def jobs(self, job_keys: Iterable[str]) -> list[Job | None]:
        """Return this queue's jobs for ``job_keys``, in order, with ``None`` for missing ones."""
        keys = list(job_keys)
        async with self._pool.connection() as connection:
            found = await self._rows.jobs(connection, keys)
        return [self._starts.overlay(self.deserialize(*found[key])) if key in found else None for key in keys]

    async def iter_jobs(
        self, statuses: list[Status] | None = None, batch_size: int = 100
    ) -> AsyncIterator[Job]:
        """Yield this queue's jobs with the given statuses, in key order, one short query per batch."""
        async for stored in self._rows.scan(self._pool.connection, statuses or list(Status), batch_size):
            if job := self.deserialize(*stored):
                yield job

    async def count(self, kind: CountKind) -> int:
        """Count this queue's ``queued`` (due), ``active`` or ``incomplete`` jobs."""
        async with self._pool.connection() as connection:
            return await self._rows.count(connection, kind)

    async def info(self, jobs: bool = False, offset: int = 0, limit: int = 10) -> QueueInfo:
        """Return this queue's live workers, counts and, with ``jobs``, a page of incomplete jobs."""
        async with self._pool.connection() as connection:
            return await self._rows.info(connection, offset, limit if jobs else 0, self.deserialize)

    async def write_worker_info(self, worker_id: str, info: WorkerInfo, ttl: int) -> None:
        """Upsert a worker's stats row, expiring ``ttl`` seconds from the server's clock."""
        async with self._pool.connection() as connection:
            await self._rows.write_worker(connection, worker_id, info, ttl)

    async def get_job_status(
        self, key: str, for_update: bool = False, connection: Executor | None = None
    ) -> Status | None:
        """Return the stored status of this queue's job ``key``, or ``None`` if there is no such job."""
        async with self._pool.connection(connection) as conn:
            return await self._rows.status(conn, key, for_update=for_update)

    # -- waiting for jobs (listen, map and apply: WaitsOnChanges) ---------------------------------
    async def listen_until(self, keys: list[str], callback: ListenCallback, poll_interval: float) -> None:
        """Call ``callback`` with each job's status, woken by the jobs' finish notifications.

        ``poll_interval`` is the safety net for jobs finished by workers that send no notification (SAQ's
        own psycopg workers).
        """
        async with self._finishes.watching(keys, self._listener) as changed:
            await call_until_done(self.read_waited, keys, callback, changed, poll_interval)

    def watch_jobs(self, poll_interval: float) -> WatchJobs:
        """Wait on the jobs' finish notifications, or the ``poll_interval`` safety-net poll."""
        return self._finishes.watcher(self._listener, poll_interval)

    async def _mark_waited(self, keys: list[str]) -> None:
        async with self._pool.connection() as connection:
            await self._rows.mark_waited(connection, keys)

    # -- dequeue ---------------------------------------------------------------------------------
    async def dequeue(self, timeout: float = 0.0, poll_interval: float = 0.0) -> Job | None:
        """Return the next due job, marked active, or ``None`` after ``timeout`` seconds (0: forever).

        Without ``poll_interval`` the queue waits on LISTEN/NOTIFY, with a slow safety-net poll.
        """
        fetcher = self._fetcher
        if fetcher is None:
            raise UsageError(f"queue {self.name!r} is not connected; await queue.connect() first")
        if poll_interval <= 0 and self._listener is not None:
            await self._listener.subscribe(self._rows.channel, fetcher.on_notice)
        return await fetcher.dequeue(timeout, poll_interval)

    async def schedule(self, lock: int = 1) -> list[str]:
        """Fetch jobs that became due for waiting callers (the Worker calls this every second)."""
        if self._fetcher is not None:
            await self._fetcher.fetch()
        return []

    # -- writes ----------------------------------------------------------------------------------
    async def update(self, job: Job, **kwargs: Any) -> None:
        """SAQ's ``update``; the Worker's start write of a job dequeued here is held back without a copy."""
        if (
            len(kwargs) == 1
            and kwargs.get("status") == Status.ACTIVE
            and self._starts.is_dequeued(job.key)
            and self._loop is asyncio.get_running_loop()
        ):
            job.touched, job.status = now(), Status.ACTIVE
            if self._starts.defer(job):
                return
        await super().update(job, **kwargs)

    @on_queue_loop
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
        async with self._pool.connection(connection) as conn:
            await self._rows.update(conn, job, self.serialize(job), status, expire_at)

    async def _store_start(self, job: Job) -> None:
        """Store a running job's start fields (attempts, worker id); see :class:`DeferredStarts`."""
        async with self._pool.connection() as connection:
            await self._rows.store_start(connection, job, self.serialize(job))

    async def _retry(self, job: Job, error: str | None) -> None:
        delay = job.next_retry_delay()
        scheduled = time.time() + delay if delay else job.scheduled or now_seconds()
        await self.update(job, status=Status.QUEUED, scheduled=int(scheduled), expire_at=None)

    async def _finish(
        self, job: Job, status: Status, *, connection: Executor | None = None, **_: Any
    ) -> None:
        self._starts.forget(job.key)
        if job.ttl < 0:
            row = FinishRow(job.key, None, Status(status).value, int(job.scheduled), None)
        else:
            job.touched = now()
            expire_at = int(now_seconds() + job.ttl) if job.ttl > 0 else None
            row = FinishRow(job.key, self.serialize(job), Status(status).value, int(job.scheduled), expire_at)
        if connection is None:  # a worker's finish: dropped if the job was taken back meanwhile
            fence, fence_process = fence_tokens(job.worker_id)
            row = row._replace(fence=fence, fence_process=fence_process)
        if connection is None and self._loop is asyncio.get_running_loop():
            if self._fetcher is None or status not in (Status.COMPLETE, Status.FAILED):
                await self._finishes_written.finish(row)  # with the other slots' finishes: one commit
                return
            with self._fetcher.returns_soon():  # a worker's slot: its next job is fetched meanwhile
                await self._finishes_written.finish(row)
            return
        async with self._pool.connection(connection) as conn:
            await self._rows.finish_many(conn, [row])

    async def _write_finishes(self, rows: Sequence[FinishRow]) -> None:
        async with self._pool.connection() as connection:
            await self._rows.finish_many(connection, rows)

    @on_queue_loop
    async def abort(self, job: Job, error: str, ttl: float = 5) -> None:
        """Abort ``job``: a queued job ends as aborted at once, a running one becomes aborting."""
        async with self._pool.connection() as connection, connection.transaction():
            status = await self._rows.status(connection, job.key, for_update=True)
            if status is None or status == Status.QUEUED:
                await self.finish(job, Status.ABORTED, error=error, connection=connection)
            else:
                await self.update(job, status=Status.ABORTING, error=error, connection=connection)

    # -- sweeping --------------------------------------------------------------------------------
    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        """Delete expired jobs and stats; retry or abort stuck jobs and jobs whose worker died.

        Runs only in the queue that holds the sweep lock. A running job whose worker was a process of
        this host that no longer exists is taken back at once, one whose worker's stats expired (another
        host) after ``orphan_grace_s``; SAQ alone waits for its timeout.
        """
        await self._starts.flush()  # so this sweep sees every start this process knows of
        async with self._sweep_lock.held(self._pool.sessions) as connection:
            if connection is None:
                return []
            running = await self._rows.sweep(connection)
        return await self._sweep_lock.take_back(
            self, [job for job in (self.deserialize(*row) for row in running) if job], abort
        )
