"""What our operations page shows, computed from a queue's stored jobs and worker stats.

Throughput is derived from the ``completed`` timestamps of finished jobs that the broker still holds
(``iter_jobs``), not from counters kept in the web process: it then counts the jobs of every worker
process and host, survives restarts of the web process and needs no background task. The price is
that a job counts only while the broker keeps it, i.e. for its ``ttl`` (SAQ's default is 600 s, so
older minutes show fewer jobs unless tasks set a longer ``ttl``), and that each request scans the
stored finished jobs (capped by ``SCAN_LIMIT``).
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from saq.job import Status

from litestar_saq.web.context import job_view

if TYPE_CHECKING:
    from saq.job import Job
    from saq.queue import Queue

__all__ = (
    "DEAD_STATUSES",
    "SCAN_LIMIT",
    "DeadLetters",
    "Throughput",
    "collect_dead_letters",
    "collect_throughput",
    "describe_workers",
)

DEAD_STATUSES = (Status.FAILED, Status.ABORTED)
"""Jobs that will not run again unless someone retries them."""
SCAN_LIMIT = 20_000
"""Most stored jobs one request looks at; beyond it the answer says ``truncated``."""
SCAN_BATCH = 1000
"""Jobs fetched per broker round trip while scanning (SAQ's default of 100 makes Redis scans slow)."""
MINUTE_MS = 60_000


@dataclass
class DeadLetters:
    """The most recently finished failed or aborted jobs of a queue."""

    jobs: list[Job]
    total: int
    """How many matching jobs were seen (all of them unless ``truncated``)."""
    truncated: bool

    def to_json(self) -> dict[str, Any]:
        """Return the API body: newest first, ``kwargs`` and ``result`` as ``repr()`` strings."""
        return {
            "jobs": [job_view(job) for job in self.jobs],
            "total": self.total,
            "truncated": self.truncated,
        }


async def collect_dead_letters(queue: Queue, statuses: list[Status], limit: int) -> DeadLetters:
    """Return up to ``limit`` jobs of ``queue`` in ``statuses``, most recently finished first."""
    newest: list[tuple[int, int, Job]] = []  # a min-heap of the newest ``limit`` jobs seen so far
    total = 0
    async for job in queue.iter_jobs(statuses=statuses, batch_size=SCAN_BATCH):
        total += 1
        entry = (job.completed or job.touched or 0, total, job)  # ``total`` breaks ties between jobs
        if len(newest) < limit:
            heapq.heappush(newest, entry)
        else:
            heapq.heappushpop(newest, entry)
        if total >= SCAN_LIMIT:
            break
    jobs = [job for *_, job in sorted(newest, key=lambda entry: entry[:2], reverse=True)]
    return DeadLetters(jobs=jobs, total=total, truncated=total >= SCAN_LIMIT)


@dataclass
class Throughput:
    """Finished jobs per minute of one queue, oldest minute first."""

    start: int
    """Epoch ms at which the first minute begins."""
    complete: list[int]
    failed: list[int]
    scanned: int
    truncated: bool

    def to_json(self) -> dict[str, Any]:
        """Return the API body."""
        return {
            "start": self.start,
            "bucket_ms": MINUTE_MS,
            "complete": self.complete,
            "failed": self.failed,
            "scanned": self.scanned,
            "truncated": self.truncated,
            "source": "completed timestamps of finished jobs still stored (each kept for its ttl)",
        }


async def collect_throughput(queue: Queue, minutes: int, now_ms: int | None = None) -> Throughput:
    """Count ``queue``'s jobs completed and failed in each of the last ``minutes`` minutes."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    # Whole minutes, the last one being the current (partial) minute.
    start = (now_ms // MINUTE_MS - (minutes - 1)) * MINUTE_MS
    counts = {Status.COMPLETE: [0] * minutes, Status.FAILED: [0] * minutes}
    scanned = 0
    async for job in queue.iter_jobs(statuses=[Status.COMPLETE, Status.FAILED], batch_size=SCAN_BATCH):
        scanned += 1
        bucket = (job.completed - start) // MINUTE_MS
        if job.completed and 0 <= bucket < minutes:
            counts[job.status][bucket] += 1
        if scanned >= SCAN_LIMIT:
            break
    return Throughput(
        start=start,
        complete=counts[Status.COMPLETE],
        failed=counts[Status.FAILED],
        scanned=scanned,
        truncated=scanned >= SCAN_LIMIT,
    )


def describe_workers(
    queue_name: str, info: dict[str, Any], starts: dict[tuple[str, str], float], now_ms: float
) -> list[dict[str, Any]]:
    """Return ``info``'s live workers with the time of their last heartbeat (epoch ms).

    A worker's stats carry ``uptime`` = (time of the heartbeat) - (worker start), but not the time
    itself. Every sighting bounds the start from above by ``seen - uptime``; the smallest bound over
    all sightings, kept in ``starts``, dates the heartbeat as ``start + uptime`` (to within the delay
    between a heartbeat and its first sighting). Entries of workers no longer listed are dropped.
    """
    workers: dict[str, Any] = info.get("workers") or {}
    for key in [key for key in starts if key[0] == queue_name and key[1] not in workers]:
        del starts[key]
    described = []
    for worker_id, worker in workers.items():
        stats = worker.get("stats") or {}
        uptime = stats.get("uptime")
        last_heartbeat = None
        if isinstance(uptime, (int, float)):
            key = (queue_name, worker_id)
            starts[key] = min(starts.get(key, now_ms - uptime), now_ms - uptime)
            last_heartbeat = int(starts[key] + uptime)
        described.append(
            {
                "queue": queue_name,
                "id": worker_id,
                "stats": stats,
                "metadata": worker.get("metadata") or {},
                "last_heartbeat": last_heartbeat,
            }
        )
    return described
