"""``MemoryQueue``: a SAQ queue kept in this process's memory, for tests and the zero-setup example.

It follows the contract of SAQ's broker queues (keys, scheduling, retries, aborts, sweeps, result
notifications) so code tested against it behaves the same on Redis or PostgreSQL.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
import typing as t
from dataclasses import dataclass
from urllib.parse import urlsplit

from saq.errors import InvalidUrlError
from saq.job import TERMINAL_STATUSES, UNSUCCESSFUL_TERMINAL_STATUSES, Job, Status, get_default_job_key
from saq.queue.base import JobError, Queue

if t.TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable, Sequence

    from saq.types import CountKind, DumpType, ListenCallback, LoadType, QueueInfo, WorkerInfo

__all__ = ("MemoryQueue",)

logger = logging.getLogger(__name__)

_RUNNING_STATUSES = (Status.ACTIVE, Status.ABORTING)


@dataclass
class _StoredJob:
    """One job as the queue keeps it: the serialized job and the fields the queue decides by."""

    payload: bytes | str
    status: Status
    started: int
    expire_at: float | None = None


def _is_superseded(stored: _StoredJob, job: Job) -> bool:
    """Tell whether ``job`` is a write from an attempt that the queue has already moved past."""
    # Each attempt sets its own ``started`` and retry() clears it, so a running attempt whose
    # ``started`` is no longer the stored one was re-queued or replaced (e.g. by the sweep).
    return job.started != 0 and job.started != stored.started


def _expiry(job: Job) -> float | None:
    """Compute when a finished job disappears: ttl seconds from now, never for 0, at once if negative."""
    return None if job.ttl == 0 else time.time() + max(job.ttl, 0)


def _is_terminal(_key: str, status: Status) -> bool:
    return status in TERMINAL_STATUSES


class MemoryQueue(Queue):
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
        self._jobs: dict[str, _StoredJob] = {}
        # Dicts as insertion-ordered sets: FIFO order and O(1) removal.
        self._queued: dict[str, None] = {}
        self._scheduled: dict[str, float] = {}
        self._active: dict[str, None] = {}
        self._aborting: dict[str, None] = {}
        self._workers: dict[str, tuple[str, float]] = {}
        self._listeners: dict[str, set[asyncio.Queue[tuple[str, Status]]]] = {}
        self._job_ready = asyncio.Event()
        self._sweeping = False

    @classmethod
    def from_url(cls, url: str, **kwargs: t.Any) -> MemoryQueue:
        """Build a queue for ``memory://``; anything after the scheme is ignored.

        Raises:
            InvalidUrlError: the URL's scheme is not ``memory``.
        """
        if urlsplit(url).scheme.lower() != "memory":
            raise InvalidUrlError(f"MemoryQueue needs a memory:// URL, got {url!r}")
        return cls(**kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}<name={self.name!r}, jobs={len(self._jobs)}>"

    async def connect(self) -> None:
        """Bind the queue to the running event loop; calling it again does nothing."""
        self._bind_loop()

    async def disconnect(self) -> None:
        """Do nothing: there is no connection to close, and the stored jobs stay for a later use."""

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop not in (None, loop):
            raise RuntimeError(f"MemoryQueue {self.name!r} belongs to another event loop; make one per loop")
        self._loop = loop

    def _get(self, key: str) -> _StoredJob | None:
        stored = self._jobs.get(key)
        if stored is not None and stored.expire_at is not None and stored.expire_at <= time.time():
            del self._jobs[key]
            return None
        return stored

    def _to_job(self, stored: _StoredJob) -> Job:
        job = self.deserialize(stored.payload, stored.status)
        if job is None:
            raise ValueError(f"queue {self.name!r}: a stored job has an empty payload")
        return job

    def _write(
        self, job: Job, status: Status, *, due: float | None = 0.0, expire_at: float | None = None
    ) -> None:
        """Store ``job`` with ``status``, file its key under that status and tell listeners.

        ``due``: epoch seconds when a QUEUED job may run; ``None`` keeps an unchanged status's filing.
        """
        job.status = status
        payload = self.serialize(job)  # first, so a job that cannot be stored changes nothing
        previous = self._jobs.get(job.key)
        self._jobs[job.key] = _StoredJob(payload, status, job.started, expire_at)
        if due is not None or previous is None or previous.status != status:
            for index in (self._queued, self._scheduled, self._active, self._aborting):
                index.pop(job.key, None)
            if status == Status.QUEUED and (due or 0.0) > time.time():
                self._scheduled[job.key] = due or 0.0
            elif status == Status.QUEUED:
                self._queued[job.key] = None
                self._job_ready.set()
            elif status in _RUNNING_STATUSES:
                (self._active if status == Status.ACTIVE else self._aborting)[job.key] = None
        self._publish(job.key, status)

    def _publish(self, key: str, status: Status) -> None:
        for inbox in self._listeners.get(key, ()):
            inbox.put_nowait((key, status))

    def _purge_expired(self) -> None:
        for key in list(self._jobs):
            self._get(key)
        current = time.time()
        self._workers = {worker_id: entry for worker_id, entry in self._workers.items() if entry[1] > current}

    async def job(self, job_key: str) -> Job | None:
        """Return a copy of the stored job with ``job_key``, or ``None`` if there is none."""
        self._bind_loop()
        stored = self._get(job_key)
        return None if stored is None else self._to_job(stored)

    async def jobs(self, job_keys: Iterable[str]) -> list[Job | None]:
        """Return copies of the jobs with ``job_keys`` in the same order, ``None`` for missing ones."""
        self._bind_loop()
        return [None if (stored := self._get(key)) is None else self._to_job(stored) for key in job_keys]

    async def iter_jobs(
        self, statuses: Sequence[Status] | None = None, batch_size: int = 100
    ) -> AsyncIterator[Job]:
        """Yield every stored job whose status is in ``statuses`` (all by default), in storage order."""
        self._bind_loop()
        wanted = set(Status if statuses is None else statuses)
        for key in list(self._jobs):
            if (stored := self._get(key)) is not None and stored.status in wanted:
                yield self._to_job(stored)

    async def count(self, kind: CountKind) -> int:
        """Count ``"queued"`` (ready to run), ``"active"`` or ``"incomplete"`` (also scheduled) jobs."""
        self._bind_loop()
        if kind == "queued":
            return len(self._queued)
        if kind == "active":
            return len(self._active)
        if kind == "incomplete":
            return len(self._queued) + len(self._active) + len(self._scheduled)
        raise ValueError(f"queue {self.name!r}: cannot count unknown kind {kind!r}")

    async def info(self, jobs: bool = False, offset: int = 0, limit: int = 10) -> QueueInfo:
        """Describe the queue: live workers, counts and, with ``jobs``, a page of incomplete jobs."""
        self._bind_loop()
        self._purge_expired()
        listing: list[dict[str, t.Any]] = []
        if jobs:
            scheduled = sorted(self._scheduled, key=self._scheduled.__getitem__)
            for key in [*self._active, *self._queued, *scheduled][offset : offset + limit]:
                listing.append(self._to_job(self._jobs[key]).to_dict())
        return {
            "workers": {worker_id: json.loads(info) for worker_id, (info, _) in self._workers.items()},
            "name": self.name,
            "queued": len(self._queued),
            "active": len(self._active),
            "scheduled": len(self._scheduled),
            "jobs": listing,
        }

    async def write_worker_info(self, worker_id: str, info: WorkerInfo, ttl: int) -> None:
        """Record a worker's stats and metadata; ``info()`` lists it for ``ttl`` seconds."""
        self._bind_loop()
        self._workers[worker_id] = (json.dumps(info), time.time() + ttl)

    async def _enqueue(self, job: Job) -> Job | None:
        self._bind_loop()
        stored = self._get(job.key)
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
        while not self._queued:
            self._job_ready.clear()
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return None
            try:
                await asyncio.wait_for(self._job_ready.wait(), remaining)
            except asyncio.TimeoutError:
                return None
        # No await from here on, so a cancellation cannot strike between taking the job and returning it.
        key = next(iter(self._queued))
        del self._queued[key]
        self._active[key] = None
        stored = self._jobs[key]
        stored.status = Status.ACTIVE
        self._publish(key, Status.ACTIVE)
        return self._to_job(stored)

    async def schedule(self, lock: int = 1) -> list[str]:
        """Move scheduled jobs that are due to the queue and return their ids."""
        self._bind_loop()
        current = time.time()
        due = sorted((at, key) for key, at in self._scheduled.items() if at <= current)
        for _, key in due:
            del self._scheduled[key]
            self._queued[key] = None
        if due:
            self._job_ready.set()
        return [key for _, key in due]

    async def notify(self, job: Job) -> None:
        """Tell the listeners of ``job`` its status."""
        self._publish(job.key, job.status)

    async def _update(self, job: Job, status: Status | None = None, **kwargs: t.Any) -> None:
        self._bind_loop()
        stored = self._get(job.key)
        if stored is None or (status is None and _is_superseded(stored, job)):
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
            expire_at = stored.expire_at if stored.status in TERMINAL_STATUSES else _expiry(job)
        self._write(job, status, due=None if status == stored.status else job.scheduled, expire_at=expire_at)

    async def _retry(self, job: Job, error: str | None) -> None:
        self._bind_loop()
        delay = job.next_retry_delay()
        self._write(job, Status.QUEUED, due=time.time() + delay if delay else 0.0)

    async def _finish(self, job: Job, status: Status, **kwargs: t.Any) -> None:
        self._bind_loop()
        stored = self._get(job.key)
        if stored is None or _is_superseded(stored, job):
            # e.g. a worker reporting on an attempt that the sweep already gave up on and re-queued
            logger.debug("queue %r: ignored a finish of missing or superseded job %s", self.name, job.key)
            return
        self._write(job, status, expire_at=_expiry(job))

    async def abort(self, job: Job, error: str, ttl: float = 5) -> None:
        """Abort ``job``: a waiting job ends ABORTED now, a running one turns ABORTING for its worker.

        The worker cancels an ABORTING job at its next ``abort`` timer tick. ``job`` gets the stored
        state; a finished or missing job is left as it is.
        """
        self._bind_loop()
        stored = self._get(job.key)
        if stored is None or stored.status in TERMINAL_STATUSES:
            return
        current = self._to_job(stored)
        current.error = error
        if stored.status in _RUNNING_STATUSES:
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
            for key in [*self._active, *self._aborting]:
                # Re-read each job: recovering the previous one awaited, and this one may have moved on.
                stored = self._get(key)
                if stored is None or stored.status not in _RUNNING_STATUSES:
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
                await self.listen([job.key], _is_terminal, abort_wait)
            except asyncio.TimeoutError:
                logger.info(
                    "queue %r: job %s did not stop within %ss of its abort", self.name, job.key, abort_wait
                )
        stored = self._get(job.key)
        if stored is not None:
            if stored.status not in (*_RUNNING_STATUSES, Status.ABORTED) or stored.started != job.started:
                return  # it completed, failed, or was re-queued or started again meanwhile
            job = self._to_job(stored)
        if job.retryable:
            await self.retry(job, error=self.swept_error_message)
        elif job.status != Status.ABORTED:
            await self.finish(job, Status.ABORTED, error=self.swept_error_message)

    async def listen(
        self,
        job_keys: Iterable[str],
        callback: ListenCallback,
        timeout: float | None = 10,
        poll_interval: float = 0.5,
    ) -> None:
        """Call ``callback(key, status)`` with each job's current status, then on every change.

        Returns when the callback returns something truthy; raises ``asyncio.TimeoutError`` after
        ``timeout`` seconds (falsy: never). Changes are pushed, so ``poll_interval`` is unused.
        """
        self._bind_loop()
        keys = list(dict.fromkeys(job_keys))
        inbox: asyncio.Queue[tuple[str, Status]] = asyncio.Queue()
        for key in keys:
            self._listeners.setdefault(key, set()).add(inbox)
            if (stored := self._get(key)) is not None:
                inbox.put_nowait((key, stored.status))
        try:
            if keys:
                await asyncio.wait_for(self._deliver(inbox, callback), timeout or None)
        finally:
            for key in keys:
                inboxes = self._listeners[key]
                inboxes.discard(inbox)
                if not inboxes:
                    del self._listeners[key]

    @staticmethod
    async def _deliver(inbox: asyncio.Queue[tuple[str, Status]], callback: ListenCallback) -> None:
        while True:
            outcome = callback(*await inbox.get())
            if inspect.isawaitable(outcome):
                outcome = await outcome
            if outcome:
                return

    async def map(
        self,
        job_or_func: str | Job,
        iter_kwargs: Sequence[dict[str, t.Any]],
        timeout: float | None = None,
        return_exceptions: bool = False,
        poll_interval: float = 0.5,
        **kwargs: t.Any,
    ) -> list[t.Any]:
        """Enqueue one job per item of ``iter_kwargs`` and return their results in order.

        SAQ's ``Queue.map`` contract, woken by job notifications instead of polling every ``poll_interval``.
        """
        jobs_kwargs = [{"timeout": timeout, **kwargs, **item} for item in iter_kwargs]
        for job_kwargs in jobs_kwargs:
            job_kwargs["key"] = job_kwargs.get("key") or get_default_job_key()
        keys = [job_kwargs["key"] for job_kwargs in jobs_kwargs]

        async def enqueue_and_collect() -> list[t.Any]:
            await asyncio.gather(*(self.enqueue(job_or_func, **job_kwargs) for job_kwargs in jobs_kwargs))
            results: dict[str, t.Any] = {}
            while pending := [key for key in dict.fromkeys(keys) if key not in results]:
                for key, job in zip(pending, await self.jobs(pending), strict=True):
                    if job is not None and job.status in UNSUCCESSFUL_TERMINAL_STATUSES:
                        if not return_exceptions:
                            raise JobError(job)
                        results[key] = JobError(job)
                    elif job is None or job.status in TERMINAL_STATUSES:
                        results[key] = None if job is None else job.result
                if unfinished := [key for key in pending if key not in results]:
                    await self.listen(unfinished, _is_terminal, None)
            return [results[key] for key in keys]

        return await asyncio.wait_for(enqueue_and_collect(), timeout)
