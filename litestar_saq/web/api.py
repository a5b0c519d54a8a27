"""The JSON API that SAQ's bundled UI calls, plus ``/health``.

Paths, methods and body shapes follow SAQ's own web servers, so its ``app.js`` works unchanged; the
differences are deliberate: unknown queues and jobs answer 404 ``{"error": ...}`` (SAQ: 500), retry
and abort answer 202 (the worker does the work later), and a queue's job list is capped.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from litestar import Response, post
from litestar.params import FromPath, FromQuery

from litestar_saq._status import QueueStatus, status_of
from litestar_saq.dsn import describe_broker, redact
from litestar_saq.health import DEFAULT_MAX_HEARTBEAT_AGE_S, HealthReport, find_problems
from litestar_saq.web.context import QUEUE_JOBS_LIMIT, get_or_head, job_view, logger, queue_view

if TYPE_CHECKING:
    from litestar.handlers import HTTPRouteHandler
    from saq.types import QueueInfo

    from litestar_saq.web.context import DashboardContext

__all__ = ("build_api_handlers",)


def build_api_handlers(context: DashboardContext) -> list[HTTPRouteHandler]:
    """Return the handlers of SAQ's UI API (under ``/api``) and ``/health``."""

    async def all_queue_infos() -> list[QueueInfo]:
        return list(await asyncio.gather(*(queue.info() for queue in context.queues())))

    @get_or_head("/api/queues", name="saq_web_queues")
    async def list_queues() -> dict[str, Any]:
        """List every queue with its counts and live workers (no jobs)."""
        return {"queues": [queue_view(info, []) for info in await all_queue_infos()]}

    @get_or_head("/api/queues/{queue_name:str}", name="saq_web_queue")
    async def show_queue(queue_name: FromPath[str]) -> dict[str, Any]:
        """Show one queue with its workers and up to ``QUEUE_JOBS_LIMIT`` incomplete jobs.

        Every job field is a string, a number or null (see ``job_view``).
        """
        info = await context.queue(queue_name).info(jobs=True, limit=QUEUE_JOBS_LIMIT)
        return {"queue": queue_view(info, [job_view(job) for job in info["jobs"][:QUEUE_JOBS_LIMIT]])}

    @get_or_head("/api/queues/{queue_name:str}/jobs/{job_key:str}", name="saq_web_job")
    async def show_job(queue_name: FromPath[str], job_key: FromPath[str]) -> dict[str, Any]:
        """Show one job; every field is a string, a number or null (see ``job_view``)."""
        return {"job": job_view(await context.job(queue_name, job_key))}

    @post("/api/queues/{queue_name:str}/jobs/{job_key:str}/retry", name="saq_web_retry", status_code=202)
    async def retry_job(queue_name: FromPath[str], job_key: FromPath[str]) -> dict[str, Any]:
        """Put the job back in the queue, whatever its status."""
        job = await context.job(queue_name, job_key)
        await job.retry("retried from ui")
        return {}

    @post("/api/queues/{queue_name:str}/jobs/{job_key:str}/abort", name="saq_web_abort", status_code=202)
    async def abort_job(queue_name: FromPath[str], job_key: FromPath[str]) -> dict[str, Any]:
        """Ask the job's worker to abort it; a queued job is aborted right away."""
        job = await context.job(queue_name, job_key)
        await job.abort("aborted from ui")
        return {}

    @get_or_head("/health", name="saq_web_health")
    async def health(
        queues: FromQuery[str | None] = None,
        max_heartbeat_age: FromQuery[float] = DEFAULT_MAX_HEARTBEAT_AGE_S,
    ) -> Response[dict[str, Any]]:
        """200 when every queue's broker answers and has a live worker with a fresh heartbeat, else 503;
        the body is what ``litestar workers health --json`` prints."""
        selected = [context.queue(name.strip()) for name in queues.split(",")] if queues else context.queues()
        results = await asyncio.gather(
            *(status_of(queue, describe_broker(queue)) for queue in selected), return_exceptions=True
        )
        statuses, problems = [], []
        for queue, result in zip(selected, results, strict=True):
            if isinstance(result, QueueStatus):
                statuses.append(result)
                continue
            if not isinstance(result, Exception):
                raise result
            reason = redact(" ".join(f"{type(result).__name__}: {result}".split()))
            logger.warning("dashboard health check: queue %r does not answer: %s", queue.name, reason)
            # The details (hosts, driver errors) stay in the server log, as for the other routes.
            problems.append(
                f"queue {queue.name!r}: broker {describe_broker(queue)} does not answer "
                f"({type(result).__name__}); see the server log"
            )
        report = HealthReport(statuses, [*problems, *find_problems(statuses, max_heartbeat_age)])
        return Response(report.to_dict(), status_code=200 if report.healthy else 503)

    return [list_queues, show_queue, show_job, retry_job, abort_job, health]
