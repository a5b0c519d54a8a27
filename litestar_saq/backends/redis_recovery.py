"""How our Redis queue decides that a job in the active list is orphaned, without SAQ's sweep race.

SAQ's sweep treats every job in the active list whose stored status is not ``active`` as stuck. But a
worker moves a job to the active list (BLMOVE) *before* it writes the ``active`` status, so a sweep
that runs in between re-queues a job that is about to run: it then runs twice (SAQ issue #277).

Here a job that only *looks* orphaned becomes a suspect; it is swept only if it still looks orphaned
after a grace period, long enough for any live worker to have written its status. Jobs whose worker
has died (no worker stats for the grace period) are recovered without waiting for their timeout.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum

from saq.job import TERMINAL_STATUSES, Job, Status

from litestar_saq.liveness import worker_died_on_this_host, worker_lives_on_this_host

__all__ = ("OrphanJudge", "Verdict")


class Verdict(Enum):
    """What the sweep does with one entry of the active list."""

    KEEP = "keep"
    """A running job, or one that may still be picked up: leave it."""
    STUCK = "stuck"
    """Its worker is alive but the job passed its timeout or heartbeat: abort it, then retry or fail."""
    ORPHANED = "orphaned"
    """Its worker is gone: retry it (or fail it when out of retries) at once."""
    REQUEUE = "requeue"
    """Dequeued but never started (the worker died in between): put it back on the queue as is."""
    FORGET = "forget"
    """Finished or missing: only the stale active-list entry is removed."""


@dataclass
class OrphanJudge:
    """Remembers when each suspect was first seen, and judges active-list entries with that memory.

    Args:
        grace_s: how long an entry must keep looking orphaned before it is swept.
    """

    grace_s: float = 10.0
    _first_seen: dict[str, float] = field(default_factory=dict)

    def judge(self, job_id: str, job: Job | None, live_workers: set[str]) -> Verdict:
        """Decide what to do with ``job_id`` (``job`` is its stored state, ``None`` if missing)."""
        if job is not None and job.status in (Status.ACTIVE, Status.ABORTING):
            if job.worker_id and worker_died_on_this_host(job.worker_id):
                self._first_seen.pop(job_id, None)
                return Verdict.ORPHANED  # its process is gone: no need to wait for its stats to expire
            if (
                job.worker_id
                and job.worker_id not in live_workers
                and not worker_lives_on_this_host(job.worker_id)  # its process is here: stats only late
            ):
                return Verdict.ORPHANED if self._suspect_long_enough(job_id) else Verdict.KEEP
            self._first_seen.pop(job_id, None)
            return Verdict.STUCK if job.stuck else Verdict.KEEP
        if not self._suspect_long_enough(job_id):
            return Verdict.KEEP
        if job is None or job.status in TERMINAL_STATUSES:
            return Verdict.FORGET
        return Verdict.REQUEUE

    def forget_all_but(self, job_ids: set[str]) -> None:
        """Drop the memory of entries that have left the active list."""
        for job_id in list(self._first_seen):
            if job_id not in job_ids:
                del self._first_seen[job_id]

    def _suspect_long_enough(self, job_id: str) -> bool:
        now = time.monotonic()
        first_seen = self._first_seen.setdefault(job_id, now)
        if now - first_seen >= self.grace_s:
            del self._first_seen[job_id]
            return True
        return False
