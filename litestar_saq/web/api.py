"""The JSON API that SAQ's bundled UI calls, plus ``/health``.

Paths, methods and body shapes follow SAQ's own web servers, so its ``app.js`` works unchanged; the
differences are deliberate: unknown queues and jobs answer 404 ``{"error": ...}`` (SAQ: 500), retry
and abort answer 202 (the worker does the work later), and a queue's job list is capped.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from litestar import MediaType, Response, post
from litestar.params import FromPath

from litestar_saq.dsn import redact
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

    @get_or_head("/health", name="saq_web_health", media_type=MediaType.TEXT)
    async def health() -> Response[str]:
        """Answer ``OK`` when every queue's broker answers, else 500 naming the failing queues."""
        results = await asyncio.gather(*(queue.info() for queue in context.queues()), return_exceptions=True)
        failing = []
        for queue, result in zip(context.queues(), results, strict=True):
            if isinstance(result, BaseException):
                logger.warning(
                    "dashboard health check: queue %r does not answer: %s", queue.name, redact(repr(result))
                )
                failing.append(queue.name)
        if failing:
            return Response(f"queues not answering: {', '.join(failing)}", status_code=500)
        return Response("OK")

    return [list_queues, show_queue, show_job, retry_job, abort_job, health]
