"""The storage half of ``AsyncpgQueue``: pool life-cycle, enqueue and reads of SAQ's Postgres tables.

Kept apart from :mod:`litestar_saq.backends.asyncpg` (dequeue, writes, sweeping, waiting) to keep each
module to one concern. Importing it without asyncpg raises ``MissingDependencyException`` naming the
``litestar-saq[postgres]`` extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from saq.job import Job, Status
from saq.queue.base import Queue
from saq.utils import now_seconds

from litestar_saq.backends.asyncpg_listener import NotificationListener, channel_name
from litestar_saq.backends.asyncpg_schema import Executor, QueueSQL, migrate
from litestar_saq.backends.asyncpg_starts import DeferredStarts
from litestar_saq.exceptions import BrokerUnavailableError, MissingExtraError
from litestar_saq.liveness import new_worker_id

try:
    import asyncpg  # type: ignore[import-untyped]
except ImportError as exc:  # pragma: no cover - exercised by the missing-extra test
    raise MissingExtraError(
        "asyncpg", install="litestar-saq[postgres]", needed_for="The PostgreSQL queue (postgresql:// DSNs)"
    ) from exc

if TYPE_CHECKING:
    from saq.types import CountKind, DumpType, LoadType, QueueInfo, WorkerInfo

__all__ = (
    "CONNECTION_ERRORS",
    "DEQUEUED_BY",
    "AsyncpgQueueBase",
    "dequeuer_id",
    "describe_target",
    "is_alive",
)

logger = logging.getLogger("litestar_saq.asyncpg")

ENQUEUE = "saq:enqueue"
NOT_GIVEN: Any = object()
CONNECTION_ERRORS = (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
# Errors that mean "the database is not there", as opposed to an error in what was asked of it.
BROKER_DOWN_ERRORS = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
)
QueueT = TypeVar("QueueT", bound="AsyncpgQueueBase")
_caller_connection: ContextVar[Executor | None] = ContextVar("saq_asyncpg_connection", default=None)


def describe_target(url: str) -> str:
    """Return ``host:port/database`` of ``url`` for error messages, never its password."""
    parts = urlsplit(url)
    try:
        port = parts.port or 5432
    except ValueError:
        port = 5432
    database = parts.path.lstrip("/") or parts.username or "postgres"
    return f"host {parts.hostname or 'localhost'!r}, port {port}, database {database!r}"


DEQUEUED_BY = "dequeued"


def dequeuer_id() -> str:
    """The ``worker_id`` dequeue stores until the Worker's own replaces it: this host and process."""
    return new_worker_id().rsplit("-", 1)[0] + "-" + DEQUEUED_BY


def is_alive(connection: Any) -> bool:
    """Whether a pooled connection is open (asyncpg detaches, and releases, one that died)."""
    try:
        return not connection.is_closed()
    except asyncpg.InterfaceError:
        return False


async def keep_session(_connection: Any) -> None:
    """Release a connection to our own pool without asyncpg's reset query (one round trip less per use).

    asyncpg still rolls back an open transaction; the queue leaves no other session state behind:
    it unlistens and unlocks before it releases the connections that had LISTENs or locks.
    """


def _is_asyncpg_connection(value: object) -> bool:
    return isinstance(value, (asyncpg.Connection, asyncpg.pool.PoolConnectionProxy))


class AsyncpgQueueBase(Queue):
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
        min_size: the pool's minimum size.
        max_size: the pool's maximum size. The listener and the sweep lock keep one connection each and
            nothing holds two at once, so 3 works; the worker's concurrency + 3 never waits.
        saq_lock_keyspace: first key of SAQ's advisory locks (migrations, sweeping).
        priorities: the inclusive range of priorities this queue dequeues.
        swept_error_message: the error given to swept jobs.
        manage_pool_lifecycle: whether connect/disconnect open and close the pool; default: only our own.
        fallback_poll_interval: seconds between safety-net polls while waiting on notifications.
        connect_timeout: seconds to wait for a connection.
        migration_timeout: seconds to wait for another session's migration.
        pool_options: more keyword arguments for ``asyncpg.create_pool`` (``server_settings``, ``ssl``...).
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
    ) -> None:
        super().__init__(name=name, dump=dump, load=load, swept_error_message=swept_error_message)
        if (pool is None) == (url is None):
            raise ValueError(f"queue {name!r}: give exactly one of pool= or url=")
        self.pool: Any = pool
        self.url = url
        self.versions_table, self.jobs_table, self.stats_table = versions_table, jobs_table, stats_table
        self.min_size, self.max_size = min_size, max_size
        self.saq_lock_keyspace = saq_lock_keyspace
        self.fallback_poll_interval = fallback_poll_interval
        self._manage_pool = manage_pool_lifecycle if manage_pool_lifecycle is not None else pool is None
        self._priorities = priorities
        self._connect_timeout, self._migration_timeout = connect_timeout, migration_timeout
        self._pool_options = dict(pool_options or {})
        self._sql = QueueSQL.for_tables(jobs_table, stats_table)
        self._channel = channel_name(f"saq:{name}")
        self._done_channel = channel_name(f"saq-done:{name}")

        self._connected = False
        self._listener: NotificationListener | None = None
        # Dequeue state: callers waiting, the local buffer of jobs fetched for them, one fetch at a time.
        self._waiting = 0
        self._job_queue: asyncio.Queue[Job] = asyncio.Queue()
        self._fetch_lock = asyncio.Lock()
        self._fetch_again = False
        self._last_fetch = 0.0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._starts = DeferredStarts(self._store_start, name)
        # Stored with each job it dequeues until the Worker's own id replaces it, so a sweep can tell
        # that a job's process died even before the Worker's start write (see DeferredStarts).
        self._dequeuer_id = dequeuer_id()
        self._done_events: dict[str, set[asyncio.Event]] = {}
        # The sweep lock lives on its own connection, which is kept until disconnect.
        self._sweep_lock = asyncio.Lock()
        self._lock_connection: Any = None

    # -- lifecycle -------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Create the pool if this queue owns one, and migrate the tables to SAQ's schema version 3."""
        if self._connected:
            return
        created = self.pool is None
        if created:
            self.pool = await self._create_pool()
        try:
            async with self.pool.acquire(timeout=self._connect_timeout) as connection:
                await migrate(
                    connection,
                    versions_table=self.versions_table,
                    jobs_table=self.jobs_table,
                    stats_table=self.stats_table,
                    lock_keyspace=self.saq_lock_keyspace,
                    deadline_s=self._migration_timeout,
                )
        except BaseException as exc:
            if created:
                await self.pool.close()
                self.pool = None
            if isinstance(exc, CONNECTION_ERRORS) and self.url is not None:
                raise BrokerUnavailableError(self._connection_failure(exc)) from None
            raise
        self._dequeuer_id = dequeuer_id()  # this process's, should the queue have crossed a fork
        self._listener = NotificationListener(
            self.pool, queue_name=self.name, on_listening=self._on_listening
        )
        await super().connect()
        self._connected = True

    async def _store_start(self, job: Job) -> None:
        """Store a running job's start fields (attempts, worker id); see :class:`DeferredStarts`."""
        async with self._connection() as connection:
            await connection.execute(self._sql.store_start, self.serialize(job), job.key, self.name)

    def _on_listening(self) -> None:
        """Called whenever the LISTEN connection is (re)established: notifications may have been missed."""

    async def _create_pool(self) -> Any:
        assert self.url is not None
        try:
            return await asyncpg.create_pool(
                self.url,
                min_size=self.min_size,
                max_size=self.max_size,
                timeout=self._connect_timeout,
                **{"reset": keep_session, **self._pool_options},
            )
        except CONNECTION_ERRORS as exc:
            raise BrokerUnavailableError(self._connection_failure(exc)) from None

    def _connection_failure(self, exc: BaseException) -> str:
        assert self.url is not None
        reason = f"{type(exc).__name__}: {exc}"
        password = urlsplit(self.url).password
        if password:
            reason = reason.replace(password, "***")
        return f"queue {self.name!r}: cannot connect to PostgreSQL at {describe_target(self.url)}: {reason}"

    # -- serialisation and small helpers ---------------------------------------------------------

    def serialize(self, job: Job) -> bytes:
        """Serialise ``job`` to the bytes stored in the ``job BYTEA`` column."""
        serialized = self._dump(job.to_dict())
        return serialized.encode() if isinstance(serialized, str) else serialized

    @contextlib.asynccontextmanager
    async def _connection(self, connection: Executor | None = None) -> AsyncIterator[Executor]:
        if connection is not None:
            yield connection
        else:
            if self.pool is None:
                raise RuntimeError(f"queue {self.name!r} is not connected; await queue.connect() first")
            async with self.pool.acquire() as acquired:
                yield acquired

    # -- enqueue ---------------------------------------------------------------------------------

    async def enqueue(self, job_or_func: str | Job, **kwargs: Any) -> Job | None:
        """Enqueue a job; pass ``connection=`` (an asyncpg connection) to write it in your transaction."""
        connection = kwargs.get("connection")
        if connection is None or not _is_asyncpg_connection(connection):
            return await self._enqueue_on_pool(job_or_func, **kwargs)
        del kwargs["connection"]
        token = _caller_connection.set(connection)
        try:
            return await super().enqueue(job_or_func, **kwargs)
        finally:
            _caller_connection.reset(token)

    async def _enqueue_on_pool(self, job_or_func: str | Job, **kwargs: Any) -> Job | None:
        """Enqueue on a pooled connection, failing within ``connect_timeout`` if PostgreSQL is gone."""
        try:
            return await asyncio.wait_for(super().enqueue(job_or_func, **kwargs), self._connect_timeout)
        except BROKER_DOWN_ERRORS as exc:
            function = job_or_func if isinstance(job_or_func, str) else job_or_func.function
            target = describe_target(self.url) if self.url is not None else "the given pool"
            raise BrokerUnavailableError(
                f"queue {self.name!r}: could not enqueue {function!r}: PostgreSQL at {target} did not "
                f"answer ({type(exc).__name__}). The job was not enqueued; retry later or check the database."
            ) from exc

    async def _enqueue(self, job: Job) -> Job | None:
        group_key = None if job.group_key is None else str(job.group_key)
        scheduled = int(job.scheduled or now_seconds())
        async with self._connection(_caller_connection.get()) as connection:
            rows = await connection.fetch(
                self._sql.enqueue,
                job.key,
                self.serialize(job),
                self.name,
                job.status.value,
                job.priority,
                group_key,
                scheduled,
                self._channel,
            )
        if not rows:
            return None
        if logger.isEnabledFor(logging.INFO):
            logger.info("Enqueuing %s", job.info(logger.isEnabledFor(logging.DEBUG)))
        return job

    # -- reads -----------------------------------------------------------------------------------

    async def job(self, job_key: str) -> Job | None:
        """Return this queue's job ``job_key``, or ``None``."""
        async with self._connection() as connection:
            row = await connection.fetchrow(self._sql.job, job_key, self.name)
        return self._starts.overlay(self.deserialize(row[0], row[1])) if row else None

    async def jobs(self, job_keys: Iterable[str]) -> list[Job | None]:
        """Return this queue's jobs for ``job_keys``, in order, with ``None`` for missing ones."""
        keys = list(job_keys)
        async with self._connection() as connection:
            rows = await connection.fetch(self._sql.jobs, keys, self.name)
        found = {row[0]: (row[1], row[2]) for row in rows}
        return [self._starts.overlay(self.deserialize(*found[key])) if key in found else None for key in keys]

    async def iter_jobs(
        self,
        statuses: list[Status] | None = None,
        batch_size: int = 100,
    ) -> AsyncIterator[Job]:
        """Yield this queue's jobs with the given statuses, in key order, one short query per batch."""
        last_key = ""
        status_values = [Status(status).value for status in (statuses or list(Status))]
        while True:
            async with self._connection() as connection:
                rows = await connection.fetch(
                    self._sql.iter_jobs, status_values, self.name, last_key, batch_size
                )
            if not rows:
                return
            for key, blob, status in rows:
                last_key = key
                job = self.deserialize(blob, status)
                if job:
                    yield job

    async def count(self, kind: CountKind) -> int:
        """Count this queue's ``queued`` (due), ``active`` or ``incomplete`` jobs."""
        index = {"queued": 0, "active": 1, "incomplete": 2}.get(kind)
        if index is None:
            raise ValueError(f"Can't count unknown type {kind}")
        return (await self._counts())[index]

    async def _counts(self) -> tuple[int, int, int]:
        async with self._connection() as connection:
            row = await connection.fetchrow(self._sql.counts, self.name, int(now_seconds()))
        return int(row[0]), int(row[1]), int(row[2])

    async def info(self, jobs: bool = False, offset: int = 0, limit: int = 10) -> QueueInfo:
        """Return this queue's live workers, counts and, with ``jobs``, a page of incomplete jobs."""
        async with self._connection() as connection:
            rows = await connection.fetch(self._sql.workers, self.name)
            counts = await connection.fetchrow(self._sql.counts, self.name, int(now_seconds()))
            job_rows = (
                await connection.fetch(self._sql.incomplete_jobs, self.name, offset, limit) if jobs else []
            )
        queued, active, incomplete = int(counts[0]), int(counts[1]), int(counts[2])
        workers: dict[str, WorkerInfo] = {
            worker_id: {
                "stats": json.loads(stats) if stats else None,
                "queue_key": queue_key,
                "metadata": json.loads(metadata) if metadata else None,
            }
            for worker_id, stats, queue_key, metadata in rows
        }
        job_dicts = [
            job.to_dict() for job in (self.deserialize(blob, status) for blob, status in job_rows) if job
        ]
        return {
            "workers": workers,
            "name": self.name,
            "queued": queued,
            "active": active,
            "scheduled": incomplete - queued - active,
            "jobs": job_dicts,
        }

    async def write_worker_info(self, worker_id: str, info: WorkerInfo, ttl: int) -> None:
        """Upsert a worker's stats row, expiring ``ttl`` seconds from the server's clock."""
        async with self._connection() as connection:
            await connection.execute(
                self._sql.write_worker,
                worker_id,
                json.dumps(info["stats"]),
                info["queue_key"],
                json.dumps(info["metadata"]),
                int(ttl),
            )

    async def get_job_status(
        self, key: str, for_update: bool = False, connection: Executor | None = None
    ) -> Status | None:
        """Return the stored status of this queue's job ``key``, or ``None`` if there is no such job."""
        async with self._connection(connection) as conn:
            status = await conn.fetchval(
                self._sql.status_for_update if for_update else self._sql.job_status, key, self.name
            )
        return None if status is None else Status(status)
