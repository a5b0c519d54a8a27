"""Job options: per-call ``JobOptions``, per-queue ``JobDefaults``, and the queue behaviour that applies them.

Precedence, for every enqueue by name (``queue.enqueue("name")``, a task handle, a cron job):
explicit option > ``@task(...)`` > ``QueueConfig.job_defaults`` > SAQ's own defaults. Only the enqueue
call knows which options were given explicitly, so the defaults are applied there, by
``JobOptionsQueue.enqueue`` (every queue class of litestar-saq derives from it). Failed and aborted jobs
are kept ``failed_ttl`` seconds by ``JobOptionsQueue.finish``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from saq.job import Job, Status
from saq.queue import Queue

from litestar_saq.backends.job_dicts import job_to_dict, new_job_key
from litestar_saq.backends.saq_queue_hooks import dump_job_dict, run_before_enqueue
from litestar_saq.bulk_enqueue import EnqueueItem, job_of_item
from litestar_saq.exceptions import TaskDefinitionError

__all__ = (
    "DEFAULT_FAILED_TTL_S",
    "JOB_DEFAULT_NAMES",
    "JobDefaults",
    "JobOptions",
    "JobOptionsQueue",
    "QueueJobOptions",
    "job_settings_problem",
)

logger = logging.getLogger("litestar_saq")

DEFAULT_FAILED_TTL_S = 7 * 24 * 3600
"""How long failed and aborted jobs are kept unless ``QueueConfig.failed_ttl`` says otherwise: 7 days."""
SAQ_DEFAULT_TIMEOUT_S = 10


class JobDefaults(TypedDict, total=False):
    """Defaults for every job of a queue (``QueueConfig.job_defaults``) or of a task (``@task``)."""

    timeout: int
    """Seconds a run may take before it is cancelled (and retried if it has attempts left); 0: no limit."""
    heartbeat: int
    """Seconds without a heartbeat after which a running job counts as stuck; 0 disables the check."""
    retries: int
    """How many attempts a job gets in all."""
    ttl: int
    """Seconds a finished job's result is kept; 0 keeps it for ever, -1 not at all."""
    retry_delay: float
    """Seconds to wait before a retry."""
    retry_backoff: bool | float
    """Double ``retry_delay`` on every retry (``True``) up to this many seconds (a number)."""


class JobOptions(JobDefaults, total=False):
    """Options of one enqueue call: the ``JobDefaults`` plus what only a single job can have."""

    key: str
    """The job's key; a second enqueue with a key already queued or running is ignored."""
    scheduled: int
    """Unix time (seconds) before which the job does not start."""
    priority: int
    """PostgreSQL: lower numbers run first."""
    group_key: str
    """PostgreSQL: jobs of one group key run one at a time."""
    meta: dict[str, Any]
    """Free data stored with the job."""


JOB_DEFAULT_NAMES = frozenset(JobDefaults.__annotations__)
JOB_OPTION_NAMES = frozenset(JobOptions.__annotations__) | JOB_DEFAULT_NAMES


def job_settings_problem(
    job_defaults: Any, failed_ttl: Any, sync_task_threads: Any, dependencies: Any
) -> tuple[str, Any, str] | None:
    """What is wrong with a ``QueueConfig``'s job settings, as ``(field, value, problem)``, or ``None``."""
    unknown = sorted(set(job_defaults or {}) - JOB_DEFAULT_NAMES)
    if unknown:
        return "job_defaults", unknown, f"are not job defaults; use {sorted(JOB_DEFAULT_NAMES)}"
    if not isinstance(failed_ttl, int) or failed_ttl < 0:
        return "failed_ttl", failed_ttl, "must be a whole number of seconds >= 0"
    if sync_task_threads is not None and (not isinstance(sync_task_threads, int) or sync_task_threads < 1):
        return "sync_task_threads", sync_task_threads, "must be an integer >= 1 or None"
    if dependencies is not None and not isinstance(dependencies, Mapping):
        return "dependencies", dependencies, "must be a mapping of name to provider"
    return None


@dataclass
class QueueJobOptions:
    """What a queue applies to its jobs, built when the plugin starts (see ``configure_job_options``)."""

    queue_defaults: JobDefaults = field(default_factory=lambda: JobDefaults())
    """``QueueConfig.job_defaults``."""
    task_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per task name: the queue defaults overlaid with the ``@task`` options."""
    injected: dict[str, frozenset[str]] = field(default_factory=dict)
    """Per task name: the parameters that are injected, so no enqueue may pass them."""
    failed_ttl: int = DEFAULT_FAILED_TTL_S
    """Seconds failed and aborted jobs are kept (0: for ever)."""
    warned_timeout: bool = False

    def for_enqueue(self, queue_name: str, function: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        """``kwargs`` with the defaults of ``function`` added where no option was given explicitly."""
        injected = self.injected.get(function)
        if injected and not injected.isdisjoint(kwargs):
            names = ", ".join(sorted(injected.intersection(kwargs)))
            raise TaskDefinitionError(
                f"queue {queue_name!r}: task {function!r} gets {names} injected by the worker; do not "
                "pass it when enqueuing (rename the job argument if it is not meant to be the dependency)"
            )
        defaults: Mapping[str, Any] = self.task_defaults.get(function, self.queue_defaults)
        if None in kwargs.values():  # an option given as None is not given (SAQ's apply passes timeout=None)
            kwargs = {
                name: value for name, value in kwargs.items() if value is not None or name not in defaults
            }
        if "timeout" not in defaults and kwargs.get("timeout") is None and not self.warned_timeout:
            self.warned_timeout = True
            logger.warning(
                "queue %r: job %r runs with SAQ's implicit %d s timeout (it is cancelled after that); "
                "set QueueConfig(job_defaults={'timeout': ...}), @task(timeout=...) or timeout= when "
                "enqueuing (0 for no limit). Warned once per queue.",
                queue_name,
                function,
                SAQ_DEFAULT_TIMEOUT_S,
            )
        if not defaults:
            return kwargs
        return {**defaults, **kwargs}

    def ttl_of_unsuccessful(self, ttl: int) -> int:
        """The ttl a failed or aborted job gets: at least ``failed_ttl``, unless it is kept for ever."""
        if ttl == 0 or self.failed_ttl == 0:
            return 0
        return max(ttl, self.failed_ttl)


class JobOptionsQueue(Queue):
    """A SAQ ``Queue`` that applies ``QueueJobOptions`` when jobs are enqueued by name and when they end.

    Without options (``job_options is None``, a queue built outside the plugin) it is SAQ's queue as is.
    """

    job_options: QueueJobOptions | None = None
    """Set by the plugin when it starts; see ``configure_job_options``."""

    def serialize(self, job: Job) -> bytes | str:
        """SAQ's serialization (``dump(job.to_dict())``), with the dict made faster (see ``job_dicts``)."""
        return dump_job_dict(self, job_to_dict(job))

    async def enqueue(self, job_or_func: str | Job, **kwargs: Any) -> Job | None:
        """Enqueue like SAQ; a job given by name gets the task's and queue's defaults (see the module)."""
        if isinstance(job_or_func, str):
            if "key" not in kwargs:
                kwargs["key"] = new_job_key()
            options = self.job_options
            if options is not None:
                kwargs = options.for_enqueue(self.name, job_or_func, kwargs)
        return await super().enqueue(job_or_func, **kwargs)

    async def enqueue_many(self, items: Iterable[EnqueueItem]) -> list[Job | None]:
        """Enqueue many jobs in as few broker round trips as the backend allows (one per batch).

        Each item is a ``Job``, a task name, or ``(task name, kwargs)`` where kwargs are what
        ``enqueue(name, **kwargs)`` takes. Returns the jobs in order, ``None`` where the key was a
        duplicate (already queued or running), as ``enqueue`` does.
        """
        options = self.job_options
        jobs = [job_of_item(self, item, options) for item in items]
        for job in jobs:
            await run_before_enqueue(self, job)
        return await self._enqueue_many(jobs)

    async def _enqueue_many(self, jobs: Sequence[Job]) -> list[Job | None]:
        """Write prepared jobs; backends override this with one round trip per batch."""
        return [await self._enqueue(job) for job in jobs]

    async def finish(
        self, job: Job, status: Status, *, result: Any = None, error: str | None = None, **kwargs: Any
    ) -> None:
        """Finish like SAQ; a failed or aborted job is kept at least ``failed_ttl`` seconds."""
        options = self.job_options
        if options is not None and status in (Status.FAILED, Status.ABORTED):
            job.ttl = options.ttl_of_unsuccessful(job.ttl)
        await super().finish(job, status, result=result, error=error, **kwargs)
