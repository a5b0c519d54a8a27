"""Ready-made worker hooks (upstream litestar-saq's names): log worker starts and stops, jobs, and job times.

Add them to a queue like any hook::

    from litestar_saq import QueueConfig
    from litestar_saq.hooks import shutdown_logger, startup_logger
    from litestar_saq.hooks import timing_after_process, timing_before_process

    QueueConfig(
        name="default",
        dsn="redis://localhost:6379/0",
        startup=[startup_logger],
        shutdown=[shutdown_logger],
        before_process=[timing_before_process],
        after_process=[timing_after_process],
    )

They write to the logger ``litestar_saq.hooks``, with the values also in the record's ``extra`` fields
(``worker_id``, ``queue_name``, ``job_id``, ``function``, ``status``, ``duration_ms``, ``event``). Worker
starts and stops and job times log at INFO, job starts and ends at DEBUG. For one line per job with its
outcome, see ``litestar_saq.job_logging``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

__all__ = (
    "TIMING_START_KEY",
    "after_process_logger",
    "before_process_logger",
    "shutdown_logger",
    "startup_logger",
    "timing_after_process",
    "timing_before_process",
)

logger = logging.getLogger("litestar_saq.hooks")

TIMING_START_KEY = "_timing_start"
"""The ``ctx`` key where ``timing_before_process`` notes when the job started (seconds since the epoch)."""

UNKNOWN = "unknown"


def _worker_fields(ctx: Mapping[str, Any]) -> dict[str, Any]:
    worker = ctx.get("worker")
    queue = ctx.get("queue") or getattr(worker, "queue", None)
    return {
        "worker_id": getattr(worker, "id", None) or ctx.get("worker_id", UNKNOWN),
        "queue_name": getattr(queue, "name", UNKNOWN),
    }


def _job_fields(ctx: Mapping[str, Any]) -> dict[str, Any]:
    job = ctx.get("job")
    return {"job_id": getattr(job, "id", UNKNOWN), "function": getattr(job, "function", UNKNOWN)}


async def startup_logger(ctx: Any) -> None:
    """Log ``SAQ worker starting`` (INFO) with the worker's id and queue; a ``startup`` hook."""
    _log_worker_event(ctx, "starting", "worker_startup")


async def shutdown_logger(ctx: Any) -> None:
    """Log ``SAQ worker shutting down`` (INFO) with the worker's id and queue; a ``shutdown`` hook."""
    _log_worker_event(ctx, "shutting down", "worker_shutdown")


def _log_worker_event(ctx: Any, what: str, event: str) -> None:
    fields = _worker_fields(ctx)
    logger.info(
        "SAQ worker %s: queue=%s worker=%s",
        what,
        fields["queue_name"],
        fields["worker_id"],
        extra={**fields, "event": event},
    )


async def before_process_logger(ctx: Any) -> None:
    """Log ``Processing job`` (DEBUG) with the job's id and function; a ``before_process`` hook."""
    fields = _job_fields(ctx)
    logger.debug(
        "Processing job %s (%s)", fields["job_id"], fields["function"], extra={**fields, "event": "job_start"}
    )


async def after_process_logger(ctx: Any) -> None:
    """Log ``Job completed`` (DEBUG) with the job's id, function and status; an ``after_process`` hook."""
    fields = _job_fields(ctx)
    status = getattr(ctx.get("job"), "status", UNKNOWN)
    fields["status"] = getattr(status, "value", status)
    logger.debug(
        "Job completed %s (%s): %s",
        fields["job_id"],
        fields["function"],
        fields["status"],
        extra={**fields, "event": "job_complete"},
    )


async def timing_before_process(ctx: Any) -> None:
    """Note the job's start time in ``ctx`` for ``timing_after_process``; a ``before_process`` hook."""
    ctx[TIMING_START_KEY] = time.time()


async def timing_after_process(ctx: Any) -> None:
    """Log ``Job completed in <n>ms`` (INFO) with the job's id and function; an ``after_process`` hook.

    Needs ``timing_before_process`` in ``before_process``; without it, logs a warning saying so.
    """
    started = ctx.get(TIMING_START_KEY)
    if started is None:
        logger.warning("timing_after_process runs without timing_before_process in before_process")
        return
    duration_ms = (time.time() - started) * 1000
    fields = _job_fields(ctx)
    logger.info(
        "Job completed in %.2fms: %s (%s)",
        duration_ms,
        fields["job_id"],
        fields["function"],
        extra={**fields, "duration_ms": duration_ms, "event": "job_timing"},
    )
