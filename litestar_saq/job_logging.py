"""Worker hooks that log one structured line per job run, on the logger ``litestar_saq.jobs``.

Add them to a queue by dotted path::

    QueueConfig(
        name="default",
        dsn="redis://localhost:6379/0",
        tasks=[...],
        before_process=["litestar_saq.job_logging.log_job_start"],
        after_process=["litestar_saq.job_logging.log_job_end"],
    )

Each run logs, when it ends, a line such as
``job complete: queue=default task=send_email key=1f0… attempts=1 duration_ms=12.4`` with the same
values in the record's ``extra`` fields ``queue``, ``task``, ``job_key``, ``attempts``,
``duration_ms`` and ``status``, ready for a JSON formatter. ``status`` is SAQ's final status
(``complete``, ``failed``, ``aborted``), or ``retried`` when the run ended and the job went back on the
queue. Levels: INFO when complete, WARNING when aborted or retried, ERROR with the traceback when
failed. ``log_job_start`` only notes the start time (without it the duration comes from the job's own
millisecond timestamps); it logs at DEBUG.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from saq.job import Status
from saq.utils import now

if TYPE_CHECKING:
    from saq.job import Job

__all__ = ("JOB_LOGGER_NAME", "log_job_end", "log_job_start")

JOB_LOGGER_NAME = "litestar_saq.jobs"
"""The logger the hooks write to."""

logger = logging.getLogger(JOB_LOGGER_NAME)

_STARTED_AT_KEY = "_job_log_started_at"


async def log_job_start(ctx: dict[str, Any]) -> None:
    """``before_process`` hook: note when the job started, for ``log_job_end``'s ``duration_ms``."""
    ctx[_STARTED_AT_KEY] = time.perf_counter()
    if logger.isEnabledFor(logging.DEBUG):
        job: Job = ctx["job"]
        logger.debug("job started: %s", _describe(job), extra=_fields(job, status="active"))


async def log_job_end(ctx: dict[str, Any]) -> None:
    """``after_process`` hook: log the job's outcome, duration and attempts in one line."""
    job: Job = ctx["job"]
    started_at = ctx.pop(_STARTED_AT_KEY, None)
    if started_at is not None:
        duration_ms = (time.perf_counter() - started_at) * 1000
    else:
        # SAQ resets ``started`` when it re-queues a job, so a retried run may have no duration.
        end = job.completed or now()
        duration_ms = float(end - job.started) if job.started else float("nan")
    exception: BaseException | None = ctx.get("exception")
    status = "retried" if job.status in (Status.QUEUED, Status.NEW) else job.status.value
    fields = _fields(job, status=status, duration_ms=round(duration_ms, 3))
    message = f"job {status}: {_describe(job)} duration_ms={duration_ms:.1f}"
    if job.status == Status.COMPLETE:
        logger.info(message, extra=fields)
        return
    fields["error"] = job.error
    if exception is None and job.error:
        # No exception object here (an abort, a sweep): the stored error says why.
        message += f" error={job.error.strip().splitlines()[-1]!r}"
    level = logging.ERROR if job.status == Status.FAILED else logging.WARNING
    logger.log(level, message, extra=fields, exc_info=exception or False)


def _fields(job: Job, **extra: Any) -> dict[str, Any]:
    return {
        "queue": job.queue.name if job.queue is not None else None,
        "task": job.function,
        "job_key": job.key,
        "attempts": job.attempts,
        **extra,
    }


def _describe(job: Job) -> str:
    queue_name = job.queue.name if job.queue is not None else None
    return f"queue={queue_name} task={job.function} key={job.key} attempts={job.attempts}"
