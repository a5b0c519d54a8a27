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
    attempts: int
    started: int
    expire_at: float | None = None


def _is_superseded(stored: _StoredJob | None, job: Job) -> bool:
    """Tell whether ``job`` is a write from an attempt the queue has already moved past."""
    if stored is None:
        return False
    if stored.attempts > job.attempts:
        return True
    # retry() clears ``started``: a waiting job without one was re-queued after this attempt began.
    return stored.status == Status.QUEUED and stored.started == 0 and job.started != 0


def _expiry(job: Job) -> float | None:
    """Compute when a finished job disappears: ttl seconds from now, never for 0, at once if negative."""
    if job.ttl == 0:
        return None
    return time.time() + max(job.ttl, 0)


class MemoryQueue(Queue):
    """Use ``memory://`` to run SAQ jobs without a broker: in tests and zero-setup examples.

    The queue implements SAQ's whole queue contract: de-duplication by ``key``, scheduled jobs,
    retries with backoff, aborts, heartbeats and sweeps, ``ttl``, worker stats, and result waiting
    (``job.refresh(until_complete=…)``, ``apply``, ``map``) woken by notifications, not polling.
    Jobs are stored serialized with ``dump``/``load``, so a job that Redis could not store fails
    here at ``enqueue`` too, and changing a ``Job`` object never changes the stored job.

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
        # Dicts used as insertion-ordered sets, so the queue is FIFO and removal is O(1).
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
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError(
                f"MemoryQueue {self.name!r} belongs to another event loop; create one queue per event loop"
            )

    # Storage

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

    def _write(self, job: Job, status: Status, *, due: float = 0.0, expire_at: float | None = None) -> None:
        """Store ``job`` with ``status``, file its key under that status and tell listeners."""
        job.status = status
        payload = self.serialize(job)  # first, so a job that cannot be stored changes nothing
        self._jobs[job.key] = _StoredJob(payload, status, job.attempts, job.started, expire_at)
        self._unindex(job.key)
        if status == Status.QUEUED and due > time.time():
            self._scheduled[job.key] = due
        elif status == Status.QUEUED:
            self._queued[job.key] = None
            self._job_ready.set()
        elif status == Status.ACTIVE:
            self._active[job.key] = None
        elif status == Status.ABORTING:
            self._aborting[job.key] = None
        self._publish(job.key, status)

    def _unindex(self, key: str) -> None:
        for index in (self._queued, self._scheduled, self._active, self._aborting):
            index.pop(key, None)

    def _publish(self, key: str, status: Status) -> None:
        for inbox in self._listeners.get(key, ()):
            inbox.put_nowait((key, status))

    def _purge_expired(self) -> None:
        for key in list(self._jobs):
            self._get(key)
        current = time.time()
        for worker_id, (_, expire_at) in list(self._workers.items()):
            if expire_at <= current:
                del self._workers[worker_id]

    # Reading

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
        self,
        statuses: Sequence[Status] | None = None,
        batch_size: int = 100,
    ) -> AsyncIterator[Job]:
        """Yield every stored job whose status is in ``statuses`` (all by default), oldest first."""
        self._bind_loop()
        wanted = set(Status if statuses is None else statuses)
        keys = list(self._jobs)
        for start in range(0, len(keys), max(batch_size, 1)):
            for key in keys[start : start + batch_size]:
                stored = self._get(key)
                if stored is not None and stored.status in wanted:
                    yield self._to_job(stored)
            await asyncio.sleep(0)  # let other tasks run between batches, as a broker round-trip would

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
                if (stored := self._get(key)) is not None:
                    listing.append(self._to_job(stored).to_dict())
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

    # Job life-cycle

    async def _enqueue(self, job: Job) -> Job | None:
        self._bind_loop()
        stored = self._get(job.key)
        if stored is not None and stored.status not in TERMINAL_STATUSES:
            return None
        self._write(job, Status.QUEUED, due=job.scheduled)
        logger.debug("queue %r: enqueued job %s", self.name, job.key)
        return job

    async def dequeue(self, timeout: float = 0.0, poll_interval: float = 0.0) -> Job | None:
        """Wait for the next ready job and mark it active; ``None`` after ``timeout`` seconds (0: never).

        Cancelling the waiting task never loses a job: a job leaves the queue only when it is returned.
        """
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
        key = next(iter(self._queued))
        stored = self._jobs[key]
        self._unindex(key)
        self._active[key] = None
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
        if stored is None:
            logger.debug("queue %r: ignored an update of missing job %s", self.name, job.key)
            return
        if status is None:
            if _is_superseded(stored, job):
                logger.debug("queue %r: ignored an update from an old attempt of %s", self.name, job.key)
                return
            status = stored.status
        elif status == Status.ACTIVE and stored.status == Status.ABORTING:
            # An abort that came between dequeue and the worker marking the job active must stand.
            status = Status.ABORTING
        expire_at = None
        if status in TERMINAL_STATUSES:
            expire_at = stored.expire_at if stored.status in TERMINAL_STATUSES else _expiry(job)
        self._write(job, status, due=job.scheduled, expire_at=expire_at)

    async def _retry(self, job: Job, error: str | None) -> None:
        self._bind_loop()
        if _is_superseded(self._get(job.key), job):
            logger.debug("queue %r: ignored a retry from an old attempt of %s", self.name, job.key)
            return
        delay = job.next_retry_delay()
        self._write(job, Status.QUEUED, due=time.time() + delay if delay else 0.0)

    async def _finish(
        self,
        job: Job,
        status: Status,
        *,
        result: t.Any = None,
        error: str | None = None,
    ) -> None:
        self._bind_loop()
        stored = self._get(job.key)
        if stored is None or _is_superseded(stored, job):
            logger.debug("queue %r: ignored a late or unknown finish of %s", self.name, job.key)
            return
        self._write(job, status, expire_at=_expiry(job))

    async def abort(self, job: Job, error: str, ttl: float = 5) -> None:
        """Abort ``job``: a waiting job ends ABORTED now, a running one turns ABORTING for its worker.

        The worker that runs an ABORTING job cancels it at its next ``abort`` timer tick. ``job`` is
        updated to the stored state. A finished or missing job is left as it is.
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
        """Drop expired jobs and workers, and recover running jobs past their timeout or heartbeat.

        A stuck job is aborted, given ``abort`` seconds to stop, then retried if it has retries
        left or finished ABORTED. Returns the swept keys. ``lock`` is accepted for SAQ's signature:
        sweeps of one queue object never overlap.
        """
        self._bind_loop()
        if self._sweeping:
            return []
        self._sweeping = True
        try:
            self._purge_expired()
            swept: list[str] = []
            for key in [*self._active, *self._aborting]:
                stored = self._get(key)
                if stored is None or stored.status not in _RUNNING_STATUSES:
                    continue
                job = self._to_job(stored)
                if not job.stuck:
                    continue
                swept.append(key)
                logger.info("queue %r: sweeping stuck job %s", self.name, key)
                await self._recover_stuck(job, abort)
            return swept
        finally:
            self._sweeping = False

    async def _recover_stuck(self, job: Job, abort_wait: float) -> None:
        await self.abort(job, self.swept_error_message)
        if abort_wait > 0:
            try:
                await self.listen([job.key], lambda _key, status: status in TERMINAL_STATUSES, abort_wait)
            except asyncio.TimeoutError:
                logger.info(
                    "queue %r: job %s did not stop within %ss of its abort", self.name, job.key, abort_wait
                )
        stored = self._get(job.key)
        if stored is not None:
            if stored.status not in (*_RUNNING_STATUSES, Status.ABORTED):
                return  # it completed, failed or was re-queued meanwhile: nothing to recover
            job = self._to_job(stored)
        if job.retryable:
            await self.retry(job, error=self.swept_error_message)
        else:
            await self.finish(job, Status.ABORTED, error=self.swept_error_message)

    # Waiting for results

    async def listen(
        self,
        job_keys: Iterable[str],
        callback: ListenCallback,
        timeout: float | None = 10,
        poll_interval: float = 0.5,
    ) -> None:
        """Call ``callback(key, status)`` with each job's current status, then on every change.

        Returns once the callback returns a truthy value. Raises ``asyncio.TimeoutError`` after
        ``timeout`` seconds; a falsy ``timeout`` waits forever. ``poll_interval`` is unused: changes
        are pushed, not polled.
        """
        self._bind_loop()
        keys = list(dict.fromkeys(job_keys))
        if not keys:
            return
        inbox: asyncio.Queue[tuple[str, Status]] = asyncio.Queue()
        for key in keys:
            self._listeners.setdefault(key, set()).add(inbox)
        try:
            for key in keys:
                if (stored := self._get(key)) is not None:
                    inbox.put_nowait((key, stored.status))
            await asyncio.wait_for(self._deliver(inbox, callback), timeout or None)
        finally:
            for key in keys:
                inboxes = self._listeners.get(key)
                if inboxes is not None:
                    inboxes.discard(inbox)
                    if not inboxes:
                        del self._listeners[key]

    @staticmethod
    async def _deliver(inbox: asyncio.Queue[tuple[str, Status]], callback: ListenCallback) -> None:
        while True:
            key, status = await inbox.get()
            outcome = callback(key, status)
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

        Same contract as SAQ's ``Queue.map`` (a failed or aborted job raises ``JobError`` unless
        ``return_exceptions``; a job that vanished gives ``None``), but it wakes on job
        notifications instead of polling every ``poll_interval``.
        """
        job_kwargs_list = [{"timeout": timeout, **kwargs, **item} for item in iter_kwargs]
        for job_kwargs in job_kwargs_list:
            job_kwargs["key"] = job_kwargs.get("key") or get_default_job_key()
        keys = [job_kwargs["key"] for job_kwargs in job_kwargs_list]

        async def enqueue_and_collect() -> list[t.Any]:
            await asyncio.gather(*(self.enqueue(job_or_func, **job_kwargs) for job_kwargs in job_kwargs_list))
            results: dict[str, t.Any] = {}
            while pending := [key for key in dict.fromkeys(keys) if key not in results]:
                for key, job in zip(pending, await self.jobs(pending), strict=True):
                    if job is None:
                        results[key] = None
                    elif job.status in UNSUCCESSFUL_TERMINAL_STATUSES:
                        if not return_exceptions:
                            raise JobError(job)
                        results[key] = JobError(job)
                    elif job.status in TERMINAL_STATUSES:
                        results[key] = job.result
                if unfinished := [key for key in pending if key not in results]:
                    await self.listen(unfinished, lambda _key, status: status in TERMINAL_STATUSES, None)
            return [results[key] for key in keys]

        return await asyncio.wait_for(enqueue_and_collect(), timeout)
