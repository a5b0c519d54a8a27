"""What every dashboard handler shares: the plugin's queues, the mount point and JSON-safe job views."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException

from litestar_saq.exceptions import DashboardLookupError, QueueNotFoundError

if TYPE_CHECKING:
    from saq.job import Job
    from saq.queue import Queue

    from litestar_saq.queues import TaskQueueRegistry

__all__ = ("DashboardContext", "DashboardLookupError", "api_error_response", "job_view", "jsonable")

logger = logging.getLogger("litestar_saq.web")

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


def job_view(job: Job | dict[str, Any]) -> dict[str, Any]:
    """Return a job's ``to_dict()`` with ``kwargs`` and ``result`` as ``repr()`` strings for SAQ's UI.

    SAQ's own servers send them as strings only on the job page; the queue page got the raw
    objects, which its renderer (snabbdom) takes for element data: the Args column stayed empty and
    a job called with ``props={"innerHTML": ...}`` could inject HTML into the dashboard.
    """
    data = job if isinstance(job, dict) else job.to_dict()
    view = {name: jsonable(value) for name, value in data.items()}
    for name in ("kwargs", "result"):
        if name in data:
            view[name] = repr(data[name])
    return view


def api_error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Answer every dashboard error as JSON with an ``error`` key, which SAQ's UI displays as is."""
    if isinstance(exc, DashboardLookupError):
        return Response({"error": str(exc)}, status_code=404)
    if isinstance(exc, HTTPException):
        # Guards raise these (401/403); keep Litestar's keys and add the one SAQ's UI reads.
        body = {"error": exc.detail, "status_code": exc.status_code, "detail": exc.detail}
        if exc.extra:
            body["extra"] = exc.extra
        return Response(body, status_code=exc.status_code, headers=exc.headers)
    # Unexpected: log the details here, send none (they may name hosts), keep the UI readable.
    logger.exception("dashboard request %s %s failed", request.method, request.url.path)
    return Response({"error": f"internal error ({type(exc).__name__}); see the server log"}, status_code=500)
