"""What the live dashboard streams: queue counts and workers, a queue's failures, one job.

``GET {root}/api/events[?queue=Q]`` streams the events of the operations page: ``queues`` (every
queue's counts), ``workers`` (the live workers), and with ``queue``: ``failures`` (its newest failed
and aborted jobs) and ``throughput`` (jobs per minute). ``GET {root}/api/jobs/events?queue=Q&key=K``
streams ``job`` (the job as ``GET .../jobs/{key}`` shows it, or ``null`` once it is gone). Every event's
data is JSON whose job fields are strings, numbers or null (``job_view``); the pages render them as
text. ``broker`` says that reading the broker failed (``{"error": null}`` once it works again) and
``end`` that the server closes the stream.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from litestar import get
from litestar.params import FromQuery
from litestar.response import ServerSentEvent  # Litestar reads the return annotation

from litestar_saq.web.context import job_view
from litestar_saq.web.insights import (
    DEAD_STATUSES,
    collect_dead_letters,
    collect_throughput,
    describe_workers,
)

if TYPE_CHECKING:
    from litestar.handlers import HTTPRouteHandler
    from saq.queue import Queue

    from litestar_saq.web.context import DashboardContext
    from litestar_saq.web.live import Feed, LiveHub
    from litestar_saq.web.security import Guard

__all__ = ("build_live_handlers",)

FAILURES_SHOWN = 50
"""Failed and aborted jobs a ``failures`` event lists, newest first (as the operations page shows)."""
FAILURE_SCAN_MIN_S = 2.0
"""Least time between two scans for failures: a scan reads every stored failed job (Redis: every key)."""
FAILURE_RESCAN_S = 30.0
"""A scan also runs this often when nothing seemed to change (a job that failed between two reads)."""
THROUGHPUT_S = 30.0
"""How often the per-minute chart is recounted."""


def _queue_counts(info: Any) -> dict[str, Any]:
    return {
        "name": info.get("name"),
        "queued": info.get("queued"),
        "active": info.get("active"),
        "scheduled": info.get("scheduled"),
        "workers": len(info.get("workers") or {}),
    }


def _fingerprint(info: Any) -> tuple[Any, ...]:
    """What changes when a job of the queue finishes: counts, and the workers' outcome totals."""
    totals = [0, 0, 0, 0]
    for worker in dict(info.get("workers") or {}).values():
        stats = worker.get("stats") or {} if isinstance(worker, dict) else {}
        for index, name in enumerate(("complete", "failed", "retried", "aborted")):
            value = stats.get(name)
            totals[index] += value if isinstance(value, int) else 0
    return (info.get("queued"), info.get("active"), info.get("scheduled"), *totals)


def build_live_handlers(context: DashboardContext, hub: LiveHub, read_guard: Guard) -> list[HTTPRouteHandler]:
    """Return the two event-stream routes; ``read_guard`` refuses requests from other sites."""

    async def read_queues(feed: Feed) -> dict[str, Any]:
        queues = context.queues()
        infos = await asyncio.gather(*(queue.info() for queue in queues))
        now_ms = time.time() * 1000
        workers: list[dict[str, Any]] = []
        for queue, info in zip(queues, infos, strict=True):
            workers += describe_workers(queue.name, dict(info), context.worker_starts, now_ms)
        counts = [_queue_counts(info) for info in infos]
        return {"queues": {"queues": counts}, "workers": {"workers": workers}}

    def read_failures(queue: Queue) -> Any:
        async def read(feed: Feed) -> dict[str, Any]:
            memo = feed.memo
            now = time.monotonic()
            fingerprint = _fingerprint(await queue.info())
            if fingerprint != memo.get("fingerprint"):
                memo["fingerprint"] = fingerprint
                memo["dirty"] = True
            states: dict[str, Any] = {}
            last_scan = memo.get("scanned_at", -FAILURE_RESCAN_S)
            due = memo.get("dirty") and now - last_scan >= FAILURE_SCAN_MIN_S
            if due or now - last_scan >= FAILURE_RESCAN_S:
                memo.update(dirty=False, scanned_at=now)
                dead = await collect_dead_letters(queue, list(DEAD_STATUSES), FAILURES_SHOWN)
                states["failures"] = {"queue": queue.name, **dead.to_json()}
            if now - memo.get("counted_at", -THROUGHPUT_S) >= THROUGHPUT_S:
                memo["counted_at"] = now
                throughput = await collect_throughput(queue, 30)
                states["throughput"] = {"queue": queue.name, **throughput.to_json()}
            return states

        return read

    def read_job(queue: Queue, job_key: str) -> Any:
        async def read(feed: Feed) -> dict[str, Any]:
            job = await queue.job(job_key)
            view = None if job is None else job_view(job)
            return {"job": {"queue": queue.name, "key": job_key, "job": view}}

        return read

    # ``opt`` names the hub, so an app's tests can count its streams and broker reads.
    @get("/api/events", name="saq_web_live_events", guards=[read_guard], opt={"live_hub": hub})
    async def dashboard_events(queue: FromQuery[str | None] = None) -> ServerSentEvent:
        """Stream queue counts and workers, and with ``queue`` its failed jobs and throughput."""
        feeds: dict[str, Any] = {"queue counts": read_queues}
        if queue is not None:
            feeds[f"failures of queue {queue!r}"] = read_failures(context.queue(queue))
        return hub.stream(feeds)

    @get("/api/jobs/events", name="saq_web_live_job", guards=[read_guard], opt={"live_hub": hub})
    async def job_events(queue: FromQuery[str], key: FromQuery[str]) -> ServerSentEvent:
        """Stream one job's state (status, progress, meta, result, error) whenever it changes."""
        await context.job(queue, key)  # an unknown queue or job is a 404, not an empty stream
        return hub.stream({f"job {key!r} of queue {queue!r}": read_job(context.queue(queue), key)})

    return [dashboard_events, job_events]
