"""Our API beyond SAQ's UI: failed and aborted jobs, bulk retry, find a job, throughput, workers.

Job keys travel in query strings and JSON bodies here, never in the path, so any key works: cron
keys such as ``cron:cleanup``, and keys with ``/``, ``?`` or ``#`` that a path cannot carry.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litestar import post
from litestar.exceptions import ClientException
from litestar.params import FromPath, FromQuery, JSONBody
from saq.job import TERMINAL_STATUSES, Status

from litestar_saq.web.context import DashboardLookupError, get_or_head, job_view
from litestar_saq.web.insights import (
    DEAD_STATUSES,
    collect_dead_letters,
    collect_throughput,
    describe_workers,
)

if TYPE_CHECKING:
    from litestar.handlers import HTTPRouteHandler

    from litestar_saq.web.context import DashboardContext

__all__ = ("BulkRetry", "build_ops_handlers", "parse_statuses")

BULK_RETRY_LIMIT = 1000
"""Most jobs one bulk retry request puts back, so one click cannot flood a queue; more keys are refused."""


@dataclass
class BulkRetry:
    """Body of ``POST /api/queues/{q}/retry-failed``."""

    keys: list[str] | None = None
    """Retry exactly these jobs (the ones the page shows, at most ``BULK_RETRY_LIMIT``); ``None`` retries
    the newest ``BULK_RETRY_LIMIT`` matching jobs."""
    statuses: list[str] | None = None
    """Which jobs count as failed; default ``["failed", "aborted"]``."""
    include_complete: bool = False
    """Must be ``true`` for ``statuses`` to hold ``complete``: re-running finished work is never a default."""


def parse_statuses(raw: list[str] | str | None) -> list[Status]:
    """Read statuses from ``"failed,aborted"`` or a list; raise a 400 naming an unknown one."""
    if raw is None:
        return list(DEAD_STATUSES)
    names = raw.split(",") if isinstance(raw, str) else raw
    statuses = []
    for name in (name.strip().lower() for name in names):
        if not name:
            continue
        try:
            statuses.append(Status(name))
        except ValueError:
            known = ", ".join(status.value for status in Status)
            raise ClientException(f"unknown job status {name!r}; use some of: {known}") from None
    return statuses or list(DEAD_STATUSES)


def _check_bulk_retry(data: BulkRetry, statuses: list[Status]) -> None:
    if not set(statuses) <= TERMINAL_STATUSES:
        # Putting a queued or running job back would run it twice.
        raise ClientException("bulk retry takes finished jobs only: failed, aborted or complete")
    if Status.COMPLETE in statuses and not data.include_complete:
        raise ClientException(
            "bulk retry re-runs completed jobs only when asked: send include_complete=true with "
            "statuses=['complete']"
        )
    if data.keys is not None and len(data.keys) > BULK_RETRY_LIMIT:
        raise ClientException(
            f"bulk retry takes at most {BULK_RETRY_LIMIT} keys per request, got {len(data.keys)}; "
            "send them in batches"
        )


def _bounded(name: str, value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise ClientException(f"{name}={value} is out of range; use {low}..{high}")
    return value


def build_ops_handlers(context: DashboardContext) -> list[HTTPRouteHandler]:
    """Return the handlers of our operations API."""

    @get_or_head("/api/queues/{queue_name:str}/jobs", name="saq_web_dead_letters")
    async def list_jobs(
        queue_name: FromPath[str], status: FromQuery[str] = "failed,aborted", limit: FromQuery[int] = 50
    ) -> dict[str, Any]:
        """List a queue's jobs in ``status`` (default failed and aborted), most recently finished first."""
        queue = context.queue(queue_name)
        statuses = parse_statuses(status)
        dead = await collect_dead_letters(queue, statuses, _bounded("limit", limit, 1, 500))
        return {"queue": queue_name, "statuses": [s.value for s in statuses], **dead.to_json()}

    @post("/api/queues/{queue_name:str}/retry-failed", name="saq_web_retry_failed", status_code=202)
    async def retry_failed(queue_name: FromPath[str], data: JSONBody[BulkRetry]) -> dict[str, Any]:
        """Put failed or aborted jobs back in the queue: ``keys`` if given, else all of them."""
        queue = context.queue(queue_name)
        statuses = parse_statuses(data.statuses)
        _check_bulk_retry(data, statuses)
        remaining = 0
        if data.keys is None:
            dead = await collect_dead_letters(queue, statuses, BULK_RETRY_LIMIT)
            candidates = dead.jobs
            remaining = dead.total - len(dead.jobs)
        else:
            found = await queue.jobs(list(dict.fromkeys(data.keys)))
            candidates = [job for job in found if job is not None]
        retried, skipped = [], []
        for job in candidates:
            # Another tab or a worker may have retried it since it was listed.
            if job.status in statuses:
                await job.retry("retried from dashboard")
                retried.append(job.key)
            else:
                skipped.append({"key": job.key, "reason": f"status is {job.status.value}"})
        found_keys = {job.key for job in candidates}
        skipped += [
            {"key": key, "reason": "no such job"}
            for key in dict.fromkeys(data.keys or [])
            if key not in found_keys
        ]
        # ``remaining``: matching jobs beyond the limit, for another request (only without ``keys``).
        return {"retried": retried, "skipped": skipped, "limit": BULK_RETRY_LIMIT, "remaining": remaining}

    @get_or_head("/api/jobs", name="saq_web_find_job")
    async def find_job(key: FromQuery[str], queue: FromQuery[str | None] = None) -> dict[str, Any]:
        """Find the job ``key`` in one queue or in all of them; 404 if no queue has it."""
        queues = [context.queue(queue)] if queue else context.queues()
        jobs = await asyncio.gather(*(candidate.job(key) for candidate in queues))
        matches = [
            {"queue": candidate.name, "job": job_view(job)}
            for candidate, job in zip(queues, jobs, strict=True)
            if job is not None
        ]
        if not matches:
            searched = ", ".join(repr(candidate.name) for candidate in queues) or "none"
            raise DashboardLookupError(f"no job with key {key!r} in queues {searched}")
        return {"jobs": matches}

    @get_or_head("/api/queues/{queue_name:str}/throughput", name="saq_web_throughput")
    async def throughput(queue_name: FromPath[str], minutes: FromQuery[int] = 30) -> dict[str, Any]:
        """Count jobs completed and failed per minute over the last ``minutes`` minutes."""
        queue = context.queue(queue_name)
        result = await collect_throughput(queue, _bounded("minutes", minutes, 1, 24 * 60))
        return {"queue": queue_name, **result.to_json()}

    @get_or_head("/api/workers", name="saq_web_workers")
    async def workers() -> dict[str, Any]:
        """List the live workers of every queue with their stats, metadata and last heartbeat."""
        queues = context.queues()
        infos = await asyncio.gather(*(queue.info() for queue in queues))
        now_ms = time.time() * 1000
        listed = []
        for queue, info in zip(queues, infos, strict=True):
            listed += describe_workers(queue.name, dict(info), context.worker_starts, now_ms)
        return {"workers": listed, "now": int(now_ms)}

    return [list_jobs, retry_failed, find_job, throughput, workers]
