"""How a worker slot waits for a job's task and records what became of it: complete, failed, aborted, back.

The rules that keep every job run once: a job whose task ran to the end is recorded complete even if
the worker is stopping; a job the worker took but never started goes back without using an attempt; a
job cut short by a stop goes back as retried.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from saq.job import Status
from saq.utils import cancel_tasks

if TYPE_CHECKING:
    from saq.job import Job
    from saq.types import JobTaskContext

__all__ = ("record_cancellation", "record_failure", "result_within_timeout")

logger = logging.getLogger("litestar_saq")


async def result_within_timeout(task: asyncio.Task[Any], job: Job) -> Any:
    """Wait for the job's task within the job's timeout; a cancelled wait leaves the task running."""
    done, _ = await asyncio.wait((task,), timeout=job.timeout or None)
    if not done:
        task.cancel()
        raise asyncio.TimeoutError(f"job {job.key!r} ran longer than its timeout of {job.timeout} s")
    return task.result()


async def record_cancellation(job: Job, running: JobTaskContext | None, hard_deadline_s: float) -> None:
    """The job was aborted, or its slot was stopped: record which, so nothing is lost or run twice."""
    if running is None:
        # Stopped before the job's task began: put it back without using up an attempt.
        job.attempts = max(0, job.attempts - 1)
        await job.retry("worker stopped before the job started")
        return
    task = running["task"]
    if running["aborted"] is not None:
        await job.finish(Status.ABORTED, error=running["aborted"])
    elif task.done() and not task.cancelled() and task.exception() is None:
        # It ran to the end; the stop came while its outcome was written: a retry would run it twice.
        await job.finish(Status.COMPLETE, result=task.result())
    else:
        await _end_task(job, task, hard_deadline_s)
        await job.retry("cancelled")


async def record_failure(
    job: Job, running: JobTaskContext | None, error: str, hard_deadline_s: float
) -> None:
    """The job raised (or timed out): retry it while it has attempts left, else record it failed."""
    logger.exception("queue %r: job %s failed", job.queue.name if job.queue else "?", job.key)
    if running is not None:
        await _end_task(job, running["task"], hard_deadline_s)
    if job.retryable:
        await job.retry(error)
    else:
        await job.finish(Status.FAILED, error=error)


async def _end_task(job: Job, task: asyncio.Task[Any], hard_deadline_s: float) -> None:
    if task.done():
        return
    if not await cancel_tasks([task], hard_deadline_s):
        logger.warning(
            "queue %r: job %s did not end within %.1f s of being cancelled; it may be blocked",
            job.queue.name if job.queue else "?",
            job.key,
            hard_deadline_s,
        )
