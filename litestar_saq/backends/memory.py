"""``MemoryQueue``: a SAQ queue kept in this process's memory, for tests and the zero-setup example.

It follows the contract of SAQ's broker queues (keys, scheduling, retries, aborts, sweeps, result
notifications) so code tested against it behaves the same on Redis or PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import typing as t
from urllib.parse import urlsplit

from saq.job import TERMINAL_STATUSES, Job, Status

from litestar_saq.backends import memory_store as store
from litestar_saq.backends.deadline import within
from litestar_saq.backends.memory_store import RUNNING_STATUSES, StoredJob
from litestar_saq.backends.waiting import WaitForChange, WaitsOnChanges, WatchJobs, is_terminal_status
from litestar_saq.exceptions import InvalidValueError, QueueUrlError, UsageError
from litestar_saq.job_options import JobOptionsQueue

if t.TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable, Sequence

    from saq.types import CountKind, DumpType, ListenCallback, LoadType, QueueInfo, WorkerInfo

__all__ = ("MemoryQueue",)

logger = logging.getLogger(__name__)


class MemoryQueue(JobOptionsQueue, WaitsOnChanges):
    """Use ``memory://`` to run SAQ jobs without a broker: in tests and zero-setup examples.

    It keeps SAQ's queue contract (keys, schedules, retries, aborts, sweeps, ``ttl``, worker stats)
    and wakes result waiters (``job.refresh(until_complete=…)``, ``apply``, ``map``) by notification.
    Jobs are stored serialized, so a job Redis could not store fails at ``enqueue`` here too, and
    changing a ``Job`` object never changes the stored job.

    Limits:
        * Jobs live in this queue object only. They cannot cross processes: workers in child
          processes (``separate_process=True``) and other web workers never see them, and they
          are gone when the process exits.
        * The queue belongs to one event loop, the first one that uses it; using it from another
          loop raises ``RuntimeError``. It is not thread-safe.

    Args:
        name: the queue's name.
        dump: serializer of a job's dict, ``json.dumps`` by default.
        load: deserializer of what ``dump`` returns, ``json.loads`` by default.
        swept_error_message: the error recorded on jobs that ``sweep()`` aborts, ``"swept"`` by default.
    """

    def __init__(
        self,
        name: str = "default",
        dump: DumpType | None = None,
        load: LoadType | None = None,
        swept_error_message: str | None = None,
    ) -> None:
        super().__init__(name=name, dump=dump, load=load, swept_error_message=swept_error_message)
        self._store = store.JobStore()
        self._workers: dict[str, tuple[str, float]] = {}
        self._listeners = store.StatusListeners()
        self._job_ready = asyncio.Event()
        self._sweeping = False
        self._bound_loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_url(cls, url: str, **kwargs: t.Any) -> MemoryQueue:
        """Build a queue for ``memory://``; anything after the scheme is ignored.

        Raises:
            QueueUrlError: the URL's scheme is not ``memory`` (a SAQ ``InvalidUrlError``).
        """
        if urlsplit(url).scheme.lower() != "memory":
            raise QueueUrlError(f"MemoryQueue needs a memory:// URL, got {url!r}")
        return cls(**kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}<name={self.name!r}, jobs={len(self._store.jobs)}>"

    async def connect(self) -> None:
        """Bind the queue to the running event loop; calling it again does nothing."""
        self._bind_loop()

    async def disconnect(self) -> None:
        """Do nothing: there is no connection to close, and the stored jobs stay for a later use."""

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._bound_loop not in (None, loop):
            raise UsageError(f"MemoryQueue {self.name!r} belongs to another event loop; make one per loop")
        self._bound_loop = loop

    def _to_job(self, stored: StoredJob) -> Job:
        job = self.deserialize(stored.payload, stored.status)
        if job is None:
            raise InvalidValueError(f"queue {self.name!r}: a stored job has an empty payload")
        return job

    def _write(
        self, job: Job, status: Status, *, due: float | None = 0.0, expire_at: float | None = None
    ) -> None:
        """Store ``job`` with ``status`` and tell listeners; ``due``: see :meth:`JobStore.put`."""
        job.status = status
        payload = self.serialize(job)  # first, so a job that cannot be stored changes nothing
        if self._store.put(job.key, StoredJob(payload, status, job.started, expire_at), due=due):
            self._job_ready.set()
        self._listeners.publish(job.key, status)

    def _purge_expired(self) -> None:
        self._store.purge_expired()
        current = time.time()
        self._workers = {worker_id: entry for worker_id, entry in self._workers.items() if entry[1] > current}

    async def job(self, job_key: str) -> Job | None:
        """Return a copy of the stored job with ``job_key``, or ``None`` if there is none."""
        self._bind_loop()
        stored = self._store.get(job_key)
        return None if stored is None else self._to_job(stored)

    async def jobs(self, job_keys: Iterable[str]) -> list[Job | None]:
        """Return copies of the jobs with ``job_keys`` in the same order, ``None`` for missing ones."""
        self._bind_loop()
        return [
            None if (stored := self._store.get(key)) is None else self._to_job(stored) for key in job_keys
        ]

    async def iter_jobs(
        self, statuses: Sequence[Status] | None = None, batch_size: int = 100
    ) -> AsyncIterator[Job]:
        """Yield every stored job whose status is in ``statuses`` (all by default), in storage order."""
        self._bind_loop()
        wanted = set(Status if statuses is None else statuses)
        for key in list(self._store.jobs):
            if (stored := self._store.get(key)) is not None and stored.status in wanted:
                yield self._to_job(stored)

    async def count(self, kind: CountKind) -> int:
        """Count ``"queued"`` (ready to run), ``"active"`` or ``"incomplete"`` (also scheduled) jobs."""
        self._bind_loop()
        store = self._store
        if kind == "queued":
            return len(store.queued)
        if kind == "active":
            return len(store.active)
        if kind == "incomplete":
            return len(store.queued) + len(store.active) + len(store.scheduled)
        raise InvalidValueError(f"queue {self.name!r}: cannot count unknown kind {kind!r}")

    async def info(self, jobs: bool = False, offset: int = 0, limit: int = 10) -> QueueInfo:
        """Describe the queue: live workers, counts and, with ``jobs``, a page of incomplete jobs."""
        self._bind_loop()
        self._purge_expired()
        keys = self._store.incomplete_keys()[offset : offset + limit] if jobs else []
        listing = [self._to_job(self._store.jobs[key]).to_dict() for key in keys]
        return {
            "workers": {worker_id: json.loads(info) for worker_id, (info, _) in self._workers.items()},
            "name": self.name,
            "queued": len(self._store.queued),
            "active": len(self._store.active),
            "scheduled": len(self._store.scheduled),
            "jobs": listing,
        }

    async def write_worker_info(self, worker_id: str, info: WorkerInfo, ttl: int) -> None:
        """Record a worker's stats and metadata; ``info()`` lists it for ``ttl`` seconds."""
        self._bind_loop()
        self._workers[worker_id] = (json.dumps(info), time.time() + ttl)

    async def _enqueue(self, job: Job) -> Job | None:
        self._bind_loop()
        stored = self._store.get(job.key)
        if stored is not None and stored.status not in TERMINAL_STATUSES:
            return None
        self._write(job, Status.QUEUED, due=job.scheduled)
        logger.debug("queue %r: enqueued job %s", self.name, job.key)
        return job

    async def dequeue(self, timeout: float = 0.0, poll_interval: float = 0.0) -> Job | None:
        """Wait for the next ready job and mark it active; ``None`` after ``timeout`` seconds (0: never)."""
        self._bind_loop()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout > 0 else None
        while not self._store.queued:
            self._job_ready.clear()
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return None
            try:
                await within(self._job_ready.wait(), remaining)
            except asyncio.TimeoutError:
                return None
        # No await from here on, so a cancellation cannot strike between taking the job and returning it.
        key = self._store.take_next()
        self._listeners.publish(key, Status.ACTIVE)
        return self._to_job(self._store.jobs[key])

    async def schedule(self, lock: int = 1) -> list[str]:
        """Move scheduled jobs that are due to the queue and return their ids."""
        self._bind_loop()
        due = self._store.promote_due()
        if due:
            self._job_ready.set()
        return due

    async def notify(self, job: Job) -> None:
        """Tell the listeners of ``job`` its status."""
        self._listeners.publish(job.key, job.status)

    async def _update(self, job: Job, status: Status | None = None, **kwargs: t.Any) -> None:
        self._bind_loop()
        stored = self._store.get(job.key)
        if stored is None or (status is None and store.is_superseded(stored, job)):
            logger.debug("queue %r: ignored an update of missing or superseded job %s", self.name, job.key)
            return
        if stored.status == Status.ABORTING and status in (None, Status.ACTIVE):
            # Neither a heartbeat nor the worker's start (an abort can land right after dequeue) may
            # undo an abort or drop its reason, which the worker's abort timer reads.
            status, job.error = Status.ABORTING, self._to_job(stored).error
        elif status is None:
            status = stored.status
        expire_at = None
        if status in TERMINAL_STATUSES:
            expire_at = stored.expire_at if stored.status in TERMINAL_STATUSES else store.expiry(job)
        self._write(job, status, due=None if status == stored.status else job.scheduled, expire_at=expire_at)

    async def _retry(self, job: Job, error: str | None) -> None:
        self._bind_loop()
        delay = job.next_retry_delay()
        self._write(job, Status.QUEUED, due=time.time() + delay if delay else 0.0)

    async def _finish(self, job: Job, status: Status, **kwargs: t.Any) -> None:
        self._bind_loop()
        stored = self._store.get(job.key)
        if stored is None or store.is_superseded(stored, job):
            # e.g. a worker reporting on an attempt that the sweep already gave up on and re-queued
            logger.debug("queue %r: ignored a finish of missing or superseded job %s", self.name, job.key)
            return
        self._write(job, status, expire_at=store.expiry(job))

    async def abort(self, job: Job, error: str, ttl: float = 5) -> None:
        """Abort ``job``: a waiting job ends ABORTED now, a running one turns ABORTING for its worker.

        The worker cancels an ABORTING job at its next ``abort`` timer tick. ``job`` gets the stored
        state; a finished or missing job is left as it is.
        """
        self._bind_loop()
        stored = self._store.get(job.key)
        if stored is None or stored.status in TERMINAL_STATUSES:
            return
        current = self._to_job(stored)
        current.error = error
        if stored.status in RUNNING_STATUSES:
            self._write(current, Status.ABORTING)
        else:
            await self.finish(current, Status.ABORTED, error=error)
        job.replace(current)

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        """Drop expired jobs and workers; abort stuck running jobs, then retry them or end them ABORTED.

        A job is stuck past its timeout or heartbeat; it gets ``abort`` seconds to stop before it is
        retried. Returns the swept keys. Sweeps never overlap, so ``lock`` is unused.
        """
        self._bind_loop()
        if self._sweeping:
            return []
        self._sweeping = True
        try:
            self._purge_expired()
            swept: list[str] = []
            for key in [*self._store.active, *self._store.aborting]:
                # Re-read each job: recovering the previous one awaited, and this one may have moved on.
                stored = self._store.get(key)
                if stored is None or stored.status not in RUNNING_STATUSES:
                    continue
                if (job := self._to_job(stored)).stuck:
                    logger.info("queue %r: sweeping stuck job %s", self.name, key)
                    swept.append(key)
                    await self._recover_stuck(job, abort)
            return swept
        finally:
            self._sweeping = False

    async def _recover_stuck(self, job: Job, abort_wait: float) -> None:
        await self.abort(job, self.swept_error_message)
        if abort_wait > 0:
            try:
                await self.listen([job.key], is_terminal_status, abort_wait)
            except asyncio.TimeoutError:
                logger.info(
                    "queue %r: job %s did not stop within %ss of its abort", self.name, job.key, abort_wait
                )
        stored = self._store.get(job.key)
        if stored is not None:
            if stored.status not in (*RUNNING_STATUSES, Status.ABORTED) or stored.started != job.started:
                return  # it completed, failed, or was re-queued or started again meanwhile
            job = self._to_job(stored)
        if job.retryable:
            await self.retry(job, error=self.swept_error_message)
        elif job.status != Status.ABORTED:
            await self.finish(job, Status.ABORTED, error=self.swept_error_message)

    async def listen_until(self, keys: list[str], callback: ListenCallback, poll_interval: float) -> None:
        """Call ``callback(key, status)`` with each job's current status, then on every change.

        Changes are pushed to listeners, never polled for: ``poll_interval`` is unused.
        """
        self._bind_loop()
        await self._listeners.listen(keys, self._current_status, callback, None)

    def _current_status(self, key: str) -> Status | None:
        return None if (stored := self._store.get(key)) is None else stored.status

    def watch_jobs(self, poll_interval: float) -> WatchJobs:
        """Changes are pushed to listeners, so ``map`` waits for them and never polls."""
        return self._watch

    @contextlib.asynccontextmanager
    async def _watch(self, _keys: list[str]) -> AsyncIterator[WaitForChange]:
        async def until_one_finishes(unfinished: list[str]) -> None:
            await self.listen(unfinished, is_terminal_status, None)

        yield until_one_finishes
