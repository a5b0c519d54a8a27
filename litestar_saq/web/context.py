"""What every dashboard handler shares: the plugin's queues, the mount point and JSON-safe job views."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import HttpMethod, Request, Response, route
from litestar.exceptions import HTTPException

from litestar_saq.exceptions import DashboardLookupError, QueueNotFoundError
from litestar_saq.web.security import SECURITY_HEADERS

if TYPE_CHECKING:
    from litestar.handlers import HTTPRouteHandler
    from saq.job import Job
    from saq.queue import Queue
    from saq.types import QueueInfo

    from litestar_saq.queues import TaskQueueRegistry

__all__ = (
    "DashboardContext",
    "DashboardLookupError",
    "api_error_response",
    "flat_value",
    "get_or_head",
    "job_view",
    "jsonable",
    "queue_view",
)

logger = logging.getLogger("litestar_saq.web")

NUMERIC_JOB_FIELDS = frozenset(
    {
        "progress",
        "attempts",
        "queued",
        "started",
        "completed",
        "scheduled",
        "touched",
        "timeout",
        "heartbeat",
        "retries",
        "ttl",
        "retry_delay",
        "total_ms",
        "priority",
    }
)
"""Job fields that are numbers in SAQ (timestamps in ms, counts, seconds): sent as a number or null."""
QUEUE_JOBS_LIMIT = 100
"""Most jobs ``GET /api/queues/{q}`` returns: SAQ's UI polls it every 2 s per open tab."""


@dataclass
class DashboardContext:
    """The state one mounted dashboard needs; built once per app by ``build_web_router``."""

    task_queues: TaskQueueRegistry
    """The app's queues, connected while it runs."""
    root_path: str
    """``web_path`` without its trailing slash: ``"/saq"``, or ``""`` when mounted at ``/``."""
    worker_starts: dict[tuple[str, str], float] = field(default_factory=dict)
    """Earliest start time (ms) seen per (queue, worker id), to date each worker's last heartbeat."""

    def queue(self, queue_name: str) -> Queue:
        """Return the queue ``queue_name``, or raise ``DashboardLookupError`` naming the known ones."""
        try:
            return self.task_queues.get(queue_name)
        except QueueNotFoundError as exc:
            raise DashboardLookupError(str(exc)) from None

    def queues(self) -> list[Queue]:
        """Return the app's connected queues in configuration order."""
        return list(self.task_queues.values())

    async def job(self, queue_name: str, job_key: str) -> Job:
        """Return job ``job_key`` of queue ``queue_name`` or raise ``DashboardLookupError``."""
        job = await self.queue(queue_name).job(job_key)
        if job is None:
            raise DashboardLookupError(f"queue {queue_name!r} has no job with key {job_key!r}")
        return job


def jsonable(value: Any) -> Any:
    """Return ``value`` if it encodes as JSON, else its ``repr()``: job payloads may hold any object."""
    try:
        msgspec.json.encode(value)
    except (TypeError, ValueError, OverflowError):
        return repr(value)
    return value


def flat_value(value: Any) -> str | int | float | None:
    """Return ``value`` as a string, a finite number or ``None``: never an object, array or boolean."""
    if isinstance(value, Enum):
        value = value.value
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value if value is None or math.isfinite(value) else repr(value)
    return str(value) if isinstance(value, str) else repr(value)


def job_view(job: Job | dict[str, Any]) -> dict[str, Any]:
    """Return a job's ``to_dict()`` for SAQ's UI with every value a string, a number or ``None``.

    SAQ's renderer (snabbdom) takes an object where it expects text for element data: a job whose
    ``kwargs``, ``function``, ``error``, ``meta``… held ``{"props": {"innerHTML": ...}}`` could put
    HTML and script into the dashboard. So no field is ever sent as an object or array; ``kwargs`` and
    ``result`` are always their ``repr()`` (``'ok'`` for the string ``ok``), as on SAQ's job page.
    """
    data = job if isinstance(job, dict) else job.to_dict()
    view = {str(name): flat_value(value) for name, value in data.items()}
    for name in ("kwargs", "result"):
        if name in data:
            view[name] = repr(data[name])
    for name in NUMERIC_JOB_FIELDS.intersection(view):
        # A string where the UI expects a number breaks its page (a <progress> refuses it): null instead.
        if not isinstance(view[name], (int, float)):
            view[name] = None
    return view


def queue_view(info: QueueInfo | dict[str, Any], jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """Return a queue's ``info()`` for SAQ's UI: flat counts, workers with flat stats, and ``jobs``."""
    workers: dict[str, Any] = {}
    for worker_id, worker_info in dict(info.get("workers") or {}).items():
        worker = dict(worker_info) if isinstance(worker_info, dict) else {}
        stats = dict(worker.get("stats") or {})
        worker["stats"] = {str(name): flat_value(value) for name, value in stats.items()}
        workers[str(worker_id)] = worker
    shown = {name: flat_value(value) for name, value in info.items() if name not in ("workers", "jobs")}
    return {**shown, "workers": workers, "jobs": jobs}


def api_error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Answer every dashboard error as JSON with an ``error`` key, which SAQ's UI displays as is."""
    if isinstance(exc, DashboardLookupError):
        return Response({"error": str(exc)}, status_code=404, headers=dict(SECURITY_HEADERS))
    if isinstance(exc, HTTPException):
        # Guards raise these (401/403); keep Litestar's keys and add the one SAQ's UI reads.
        body: dict[str, Any] = {"error": exc.detail, "status_code": exc.status_code, "detail": exc.detail}
        if exc.extra:
            body["extra"] = exc.extra
            # Validation errors name the field only in ``extra``; the UI shows ``error`` alone.
            problems = [
                f"{item.get('key')}: {item.get('message')}"
                for item in (exc.extra if isinstance(exc.extra, list) else [])
                if isinstance(item, dict) and "message" in item
            ]
            if problems:
                body["error"] = f"{exc.detail} ({'; '.join(problems)})"
        return Response(
            body, status_code=exc.status_code, headers={**SECURITY_HEADERS, **(exc.headers or {})}
        )
    # Unexpected: log the details here, send none (they may name hosts), keep the UI readable.
    logger.exception("dashboard request %s %s failed", request.method, request.url.path)
    return Response(
        {"error": f"internal error ({type(exc).__name__}); see the server log"},
        status_code=500,
        headers=dict(SECURITY_HEADERS),
    )


def get_or_head(path: str | list[str], **options: Any) -> HTTPRouteHandler:
    """Like ``litestar.get``, and answer ``HEAD`` too (same headers, no body), as HTTP asks."""
    return route(path, http_method=[HttpMethod.GET, HttpMethod.HEAD], **options)
