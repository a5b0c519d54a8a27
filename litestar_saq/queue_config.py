"""``QueueConfig``: one queue's broker, tasks, schedules, hooks and how its workers run.

Everything that can be checked without a broker is checked when it is built, and the error names the
queue, the field and the value at fault. ``litestar_saq.config`` re-exports it (upstream's path).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import timezone, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from litestar.utils.predicates import is_async_callable

from litestar_saq._imports import callable_name, import_string
from litestar_saq.compat import LegacyQueueFields, apply_upstream_queue_fields
from litestar_saq.cron import CronJob, TaskFunction
from litestar_saq.dsn import (
    CLUSTER_REFUSAL,
    REDIS_CLUSTER_SCHEMES,
    SUPPORTED_SCHEMES,
    describe_broker,
    dsn_scheme,
    masked_repr,
)
from litestar_saq.exceptions import SAQConfigError
from litestar_saq.handles import TaskHandle
from litestar_saq.job_options import DEFAULT_FAILED_TTL_S, JobDefaults, job_settings_problem

if TYPE_CHECKING:
    from saq.job import CronJob as SAQCronJob
    from saq.types import PartialTimersDict

__all__ = ("HookSpec", "QueueConfig", "TaskSpec", "reject_duplicates")

TaskSpec = TaskFunction | str | tuple[str, TaskFunction | str]
"""A task: an ``async def`` function, its dotted path, or a ``(name, function_or_path)`` pair."""
Hook = Callable[[Any], Any] | str
HookSpec = Hook | Collection[Hook] | None
"""A worker hook (``startup``, ``before_process``…): a callable, a dotted path, or a list of either."""

_TIMER_NAMES = frozenset({"schedule", "worker_info", "sweep", "abort"})


@dataclass
class QueueConfig(LegacyQueueFields):
    """One SAQ queue: its broker, its tasks and how its workers run."""

    name: str = "default"
    """The queue's name; handlers find it with ``task_queues.get(name)``."""
    dsn: str | None = None
    """Broker address: ``redis://``, ``rediss://``, ``unix://``, ``postgresql://`` or ``memory://``."""
    broker_instance: Any = None
    """Instead of ``dsn``: a ``redis.asyncio.Redis`` client, an ``asyncpg.Pool`` or a ready SAQ ``Queue``.

    The plugin uses it and never closes it."""
    broker_options: Mapping[str, Any] = field(default_factory=dict)
    """Extra options for the broker client built from ``dsn`` (e.g. ``health_check_interval``)."""
    tasks: Collection[TaskSpec] = ()
    """The queue's tasks: ``@task`` handles, ``async def`` or ``def`` functions (a ``def`` runs in a
    thread), dotted paths, or ``(name, function)`` pairs."""
    scheduled_tasks: Collection[CronJob] = ()
    """Cron jobs that the queue's workers enqueue and run."""
    cron_tz: tzinfo | str = timezone.utc
    """Time zone for ``scheduled_tasks``: a ``tzinfo`` or an IANA name such as ``"Europe/Paris"``."""
    concurrency: int = 10
    """How many jobs one worker runs at the same time."""
    max_concurrent_ops: int = 20
    """Redis only: how many broker operations one queue object runs at once."""
    startup: HookSpec = None
    """Called with ``ctx`` when a worker starts, after the plugin's own setup."""
    shutdown: HookSpec = None
    """Called with ``ctx`` when a worker stops."""
    before_process: HookSpec = None
    """Called with ``ctx`` before every job."""
    after_process: HookSpec = None
    """Called with ``ctx`` after every job, whatever its outcome."""
    timers: PartialTimersDict | None = None
    """Seconds between the worker's upkeep runs: ``schedule``, ``worker_info``, ``sweep``, ``abort``."""
    dequeue_timeout: float = 0
    """Seconds a worker waits for a job before looping; 0 waits for ever (needed > 0 for ``burst``)."""
    burst: bool = False
    """Stop the worker once the queue is empty."""
    max_burst_jobs: int | None = None
    """In burst mode, stop after this many jobs."""
    separate_process: bool = True
    """Run this queue's workers in their own processes (``litestar workers run`` or the server
    lifespan) instead of inside every web process."""
    worker_processes: int | None = None
    """Child processes for this queue; ``None`` uses ``SAQConfig.worker_processes``."""
    metadata: dict[str, Any] | None = None
    """Data every worker of this queue reports with its stats (shown in the web UI)."""
    shutdown_grace_period_s: int | None = 10
    """Seconds running jobs get to finish when a worker stops; unfinished ones are aborted and retried."""
    cancellation_hard_deadline_s: float = 1.0
    """Seconds a cancelled job gets to unwind before the worker gives up on it."""
    poll_interval: float = 0.0
    """PostgreSQL: poll every this many seconds instead of waiting for NOTIFY (for PgBouncer)."""
    dependencies: Mapping[str, Any] | None = None
    """Providers for this queue's tasks (``Provide(...)`` or callables), over ``SAQConfig.dependencies``
    and under ``@task(dependencies=...)``. A task parameter with a provider's name is injected per job."""
    job_defaults: JobDefaults | None = None
    """Options of every job of the queue: ``timeout``, ``retries``, ``ttl``, ``heartbeat``,
    ``retry_delay``, ``retry_backoff``. An enqueue's own options and ``@task(...)`` win over them."""
    failed_ttl: int = DEFAULT_FAILED_TTL_S
    """Seconds failed and aborted jobs are kept (default 7 days, 0 for ever), so the dashboard and
    ``retry_failed`` see them after a completed job's ``ttl`` would have dropped them."""
    sync_task_threads: int | None = None
    """How many plain ``def`` tasks one worker runs at once (its thread pool); ``None``: ``concurrency``."""
    max_jobs_per_worker: int | None = None
    """Recycle a worker process after it took this many jobs: it finishes them and exits, and a fresh
    process replaces it at once (like Celery's ``--max-tasks-per-child``). Needs ``separate_process``."""
    max_memory_per_worker_mb: float | None = None
    """Recycle a worker process whose resident memory, checked after each job, reaches this many MiB
    (leaky tasks, fragmented heaps). Needs ``separate_process``."""

    def __repr__(self) -> str:
        # The dataclass repr would print the DSN with its password.
        return masked_repr(self)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise SAQConfigError(f"QueueConfig: name {self.name!r} must be a non-empty string")
        apply_upstream_queue_fields(self)
        self._check_broker()
        self._check_numbers()
        self._check_job_settings()
        self.cron_tz = self._parse_cron_tz(self.cron_tz)
        self.tasks = list(self.tasks)
        self.scheduled_tasks = list(self.scheduled_tasks)
        for task in self.tasks:
            self._check_task(task)
        for cron_job in self.scheduled_tasks:
            if not isinstance(cron_job, CronJob):
                raise self._error("scheduled_tasks", cron_job, "must be litestar_saq.CronJob instances")
            self._check_function("scheduled_tasks", cron_job.function)
        for hook_field in ("startup", "shutdown", "before_process", "after_process"):
            for hook in _as_list(getattr(self, hook_field)):
                self._check_function(hook_field, hook)
        explicit_names = [task[0] for task in self.tasks if isinstance(task, tuple)]
        explicit_names += [callable_name(task) for task in self.tasks if callable(task)]
        reject_duplicates(explicit_names, lambda name: self._error("tasks", name, _DUPLICATE_TASK_HINT))

    # --- checks --------------------------------------------------------------------------------------
    def _error(self, field_name: str, value: Any, problem: str) -> SAQConfigError:
        return SAQConfigError(f"queue {self.name!r}: {field_name}={value!r} {problem}")

    def _check_broker(self) -> None:
        if (self.dsn is None) == (self.broker_instance is None):
            given = "both" if self.dsn is not None else "neither"
            raise SAQConfigError(
                f"queue {self.name!r}: {given} of dsn and broker_instance given; set exactly one "
                "(dsn='redis://…', 'postgresql://…' or 'memory://', or broker_instance=<client or Queue>)"
            )
        if self.dsn is not None:
            scheme = dsn_scheme(self.dsn)
            if scheme in REDIS_CLUSTER_SCHEMES:
                raise SAQConfigError(
                    f"queue {self.name!r}: dsn={describe_broker(self.dsn)!r}: {CLUSTER_REFUSAL}"
                )
            if scheme not in SUPPORTED_SCHEMES:
                raise SAQConfigError(
                    f"queue {self.name!r}: dsn={describe_broker(self.dsn)!r} has unsupported scheme "
                    f"{scheme!r}; use one of: {', '.join(s + '://' for s in SUPPORTED_SCHEMES)}"
                )
            if scheme == "memory" and self.separate_process:
                raise SAQConfigError(
                    f"queue {self.name!r}: dsn='memory://' keeps jobs inside one process, so it cannot "
                    "feed workers in other processes; set separate_process=False, or use a Redis or "
                    "PostgreSQL dsn for separate worker processes"
                )

    def _check_numbers(self) -> None:
        if not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise self._error("concurrency", self.concurrency, "must be an integer >= 1")
        if self.worker_processes is not None and (
            not isinstance(self.worker_processes, int) or self.worker_processes < 1
        ):
            raise self._error("worker_processes", self.worker_processes, "must be an integer >= 1 or None")
        if self.shutdown_grace_period_s is not None and self.shutdown_grace_period_s < 0:
            raise self._error("shutdown_grace_period_s", self.shutdown_grace_period_s, "must be >= 0")
        for limit in ("max_jobs_per_worker", "max_memory_per_worker_mb"):
            self._check_recycle_limit(limit, getattr(self, limit))
        if self.burst and self.dequeue_timeout <= 0:
            raise self._error(
                "dequeue_timeout", self.dequeue_timeout, "must be > 0 when burst=True (e.g. 1.0)"
            )
        for timer, seconds in (self.timers or {}).items():
            if timer not in _TIMER_NAMES:
                raise self._error("timers", timer, f"is not a timer; use {sorted(_TIMER_NAMES)}")
            if not isinstance(seconds, (int, float)) or seconds <= 0:
                raise self._error(f"timers[{timer!r}]", seconds, "must be a number of seconds > 0")
            if timer != "abort" and seconds != int(seconds):
                # SAQ uses these timers as Redis lock lifetimes, which must be whole seconds.
                raise self._error(f"timers[{timer!r}]", seconds, "must be a whole number of seconds")

    def _check_recycle_limit(self, field_name: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise self._error(field_name, value, "must be a number > 0 or None")
        if not self.separate_process:
            raise self._error(
                field_name,
                value,
                "needs separate_process=True: only a worker process can be recycled, not the web process "
                "that runs in-process workers",
            )

    def _parse_cron_tz(self, cron_tz: tzinfo | str) -> tzinfo:
        if isinstance(cron_tz, tzinfo):
            return cron_tz
        try:
            return ZoneInfo(cron_tz)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise self._error(
                "cron_tz", cron_tz, "is not a time zone; use a tzinfo or an IANA name like 'Europe/Paris'"
            ) from None

    def _check_task(self, task: Any) -> None:
        if isinstance(task, tuple):
            if len(task) != 2 or not isinstance(task[0], str) or not task[0]:
                raise self._error("tasks", task, "must be a (name, function) pair with a non-empty name")
            if isinstance(task[1], TaskHandle) and task[0] != task[1].name:
                raise self._error(
                    "tasks", task, f"renames a @task handle; name it with @task(name={task[0]!r}) instead"
                )
            self._check_function("tasks", task[1])
        else:
            self._check_function("tasks", task)

    def _check_job_settings(self) -> None:
        settings = (self.job_defaults, self.failed_ttl, self.sync_task_threads, self.dependencies)
        problem = job_settings_problem(*settings)
        if problem is not None:
            raise self._error(*problem)

    def _check_function(self, field_name: str, function: Any) -> None:
        if isinstance(function, str):
            return  # resolved (and then checked) when the plugin starts
        if not callable(function):
            raise self._error(
                field_name, function, "is not callable; give an async function or its dotted path"
            )
        if field_name in ("tasks", "scheduled_tasks"):
            return  # a plain 'def' task runs in the worker's thread pool
        if not is_async_callable(function):
            raise self._error(
                field_name,
                callable_name(function),
                "is a plain 'def'; declare it 'async def' (run blocking work with "
                "anyio.to_thread.run_sync inside it)",
            )

    # --- resolution (at plugin start) ----------------------------------------------------------------
    def resolve_tasks(self) -> dict[str, TaskFunction]:
        """Import dotted paths and return the queue's tasks by name, cron functions included."""
        tasks: dict[str, TaskFunction] = {}

        def add(name: str, function: TaskFunction) -> None:
            if tasks.get(name, function) is not function:
                raise self._error("tasks", name, _DUPLICATE_TASK_HINT)
            tasks[name] = function

        for task in self.tasks:
            if isinstance(task, tuple):
                add(task[0], self._resolve("tasks", task[1]))
            else:
                function = self._resolve("tasks", task)
                add(callable_name(function), function)
        for cron_job in self.scheduled_tasks:
            function = self._resolve("scheduled_tasks", cron_job.function)
            add(callable_name(function), function)
        return tasks

    def resolve_cron_jobs(self, prepared: Mapping[str, TaskFunction] | None = None) -> list[SAQCronJob[Any]]:
        """Return SAQ ``CronJob`` objects with their functions imported.

        Args:
            prepared: the functions the worker runs, by task name, to use instead of the imported ones.
        """
        cron_jobs = []
        for job in self.scheduled_tasks:
            function = self._resolve("scheduled_tasks", job.function)
            cron_jobs.append(job.to_saq((prepared or {}).get(callable_name(function), function)))
        return cron_jobs

    def resolve_hooks(self, hook_field: str) -> list[Callable[[Any], Any]]:
        """Return the hooks of ``hook_field`` (e.g. ``"startup"``) with dotted paths imported."""
        return [self._resolve(hook_field, hook) for hook in _as_list(getattr(self, hook_field))]

    def _resolve(self, field_name: str, function: TaskFunction | str) -> TaskFunction:
        if isinstance(function, str):
            resolved: TaskFunction = import_string(function, what=f"queue {self.name!r}: {field_name}")
            self._check_function(field_name, resolved)
            return resolved
        return function

    @property
    def scheme(self) -> str | None:
        """The DSN's scheme (``"redis"``, ``"postgresql"``…), or ``None`` for a ``broker_instance``."""
        return dsn_scheme(self.dsn) if self.dsn is not None else None


_DUPLICATE_TASK_HINT = "is registered twice; give one of them another name with a (name, function) pair"


def _as_list(hooks: HookSpec) -> list[Hook]:
    if hooks is None:
        return []
    if isinstance(hooks, str) or callable(hooks):
        return [hooks]
    if isinstance(hooks, Mapping):
        # Not a list of hooks, whatever the annotation says: kept whole so that the check names it.
        not_a_hook: Any = hooks
        return [not_a_hook]
    return list(hooks)


def reject_duplicates(names: list[str], make_error: Callable[[str], SAQConfigError]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise make_error(name)
        seen.add(name)
