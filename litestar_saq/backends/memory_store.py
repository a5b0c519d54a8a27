"""How ``MemoryQueue`` keeps its jobs (serialized, filed by status, with expiry) and tells listeners."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from saq.job import Job, Status

from litestar_saq.backends.deadline import within

if TYPE_CHECKING:
    from saq.types import ListenCallback

__all__ = ("RUNNING_STATUSES", "JobStore", "StatusListeners", "StoredJob", "expiry", "is_superseded")

RUNNING_STATUSES = (Status.ACTIVE, Status.ABORTING)


@dataclass
class StoredJob:
    """One job as the queue keeps it: the serialized job and the fields the queue decides by."""

    payload: bytes | str
    status: Status
    started: int
    expire_at: float | None = None


def is_superseded(stored: StoredJob, job: Job) -> bool:
    """Tell whether ``job`` is a write from an attempt that the queue has already moved past."""
    # Each attempt sets its own ``started`` and retry() clears it, so a running attempt whose
    # ``started`` is no longer the stored one was re-queued or replaced (e.g. by the sweep).
    return job.started != 0 and job.started != stored.started


def expiry(job: Job) -> float | None:
    """Compute when a finished job disappears: ttl seconds from now, never for 0, at once if negative."""
    return None if job.ttl == 0 else time.time() + max(job.ttl, 0)


class JobStore:
    """Stored jobs by key, and their keys filed by status.

    The files are dicts used as insertion-ordered sets: FIFO order and O(1) removal.
    """

    def __init__(self) -> None:
        self.jobs: dict[str, StoredJob] = {}
        self.queued: dict[str, None] = {}
        self.scheduled: dict[str, float] = {}
        self.active: dict[str, None] = {}
        self.aborting: dict[str, None] = {}

    def get(self, key: str) -> StoredJob | None:
        """Return the stored job ``key``, or ``None`` if there is none or it has expired (and drop it)."""
        stored = self.jobs.get(key)
        if stored is not None and stored.expire_at is not None and stored.expire_at <= time.time():
            del self.jobs[key]
            return None
        return stored

    def put(self, key: str, stored: StoredJob, *, due: float | None) -> bool:
        """Store ``stored`` and file ``key`` under its status; return whether it is now ready to run.

        ``due``: epoch seconds when a QUEUED job may run; ``None`` keeps an unchanged status's filing.
        """
        previous = self.jobs.get(key)
        self.jobs[key] = stored
        if due is None and previous is not None and previous.status == stored.status:
            return False
        for index in (self.queued, self.scheduled, self.active, self.aborting):
            index.pop(key, None)
        if stored.status == Status.QUEUED and (due or 0.0) > time.time():
            self.scheduled[key] = due or 0.0
        elif stored.status == Status.QUEUED:
            self.queued[key] = None
            return True
        elif stored.status in RUNNING_STATUSES:
            (self.active if stored.status == Status.ACTIVE else self.aborting)[key] = None
        return False

    def take_next(self) -> str:
        """File the first ready job as active and return its key (there must be one)."""
        key = next(iter(self.queued))
        del self.queued[key]
        self.active[key] = None
        self.jobs[key].status = Status.ACTIVE
        return key

    def promote_due(self) -> list[str]:
        """File the scheduled jobs that are due as ready, in due order, and return their keys."""
        current = time.time()
        due = sorted((at, key) for key, at in self.scheduled.items() if at <= current)
        for _, key in due:
            del self.scheduled[key]
            self.queued[key] = None
        return [key for _, key in due]

    def incomplete_keys(self) -> list[str]:
        """Keys of the active, ready and scheduled jobs, in that order (scheduled ones by due time)."""
        return [*self.active, *self.queued, *sorted(self.scheduled, key=self.scheduled.__getitem__)]

    def purge_expired(self) -> None:
        """Drop every expired job."""
        for key in list(self.jobs):
            self.get(key)


class StatusListeners:
    """The callers listening to jobs' statuses, each with an inbox of ``(key, status)`` changes."""

    def __init__(self) -> None:
        self._inboxes: dict[str, set[asyncio.Queue[tuple[str, Status]]]] = {}

    def publish(self, key: str, status: Status) -> None:
        """Tell the listeners of job ``key`` its new status."""
        for inbox in self._inboxes.get(key, ()):
            inbox.put_nowait((key, status))

    async def listen(
        self,
        job_keys: Iterable[str],
        current: Callable[[str], Status | None],
        callback: ListenCallback,
        timeout: float | None,
    ) -> None:
        """Call ``callback(key, status)`` with each job's ``current`` status, then on every change.

        Returns when the callback returns something truthy; raises ``asyncio.TimeoutError`` after
        ``timeout`` seconds (falsy: never).
        """
        keys = list(dict.fromkeys(job_keys))
        inbox: asyncio.Queue[tuple[str, Status]] = asyncio.Queue()
        for key in keys:
            self._inboxes.setdefault(key, set()).add(inbox)
            if (status := current(key)) is not None:
                inbox.put_nowait((key, status))
        try:
            if keys:
                await within(_deliver(inbox, callback), timeout or None)
        finally:
            for key in keys:
                inboxes = self._inboxes[key]
                inboxes.discard(inbox)
                if not inboxes:
                    del self._inboxes[key]


async def _deliver(inbox: asyncio.Queue[tuple[str, Status]], callback: ListenCallback) -> None:
    while True:
        outcome = callback(*await inbox.get())
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome:
            return
