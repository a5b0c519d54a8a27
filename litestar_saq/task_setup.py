"""What a queue's tasks need before the first job: their injection plans, the functions the worker
runs, and the job options the queue applies (``@task`` options, ``job_defaults``, ``failed_ttl``).

Worked out once per queue when the app starts and when a worker is built, never per job.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from litestar_saq.handles import TaskHandle
from litestar_saq.injection import TaskPlan, merge_dependencies, plan_task
from litestar_saq.job_options import JobOptionsQueue, QueueJobOptions

if TYPE_CHECKING:
    from saq.queue import Queue

    from litestar_saq.config import QueueConfig, SAQConfig
    from litestar_saq.cron import TaskFunction

__all__ = ("configure_job_options", "runnable", "task_plans")

logger = logging.getLogger("litestar_saq")


def task_plans(queue_config: QueueConfig, config: SAQConfig | None) -> dict[str, TaskPlan]:
    """The injection plan of every task of ``queue_config`` (cron functions included), by task name.

    Raises:
        SAQConfigError: a task or provider asks for a dependency that nobody provides.
    """
    app_dependencies = config.dependencies if config is not None else None
    plans = {}
    for name, function in queue_config.resolve_tasks().items():
        handle = function if isinstance(function, TaskHandle) else None
        plans[name] = plan_task(
            name,
            handle.function if handle is not None else function,
            merge_dependencies(app_dependencies, queue_config.dependencies, handle and handle.dependencies),
            where=f"queue {queue_config.name!r}",
        )
    return plans


def runnable(plan: TaskPlan) -> TaskFunction:
    """The coroutine function the worker calls for ``plan``'s task, named as the task.

    A task with nothing to inject, not run in a thread and not renamed is called as it is.
    """
    function = plan.function
    if plan.is_plain:
        if getattr(function, "__qualname__", None) == plan.name:
            return function

        async def run_job(ctx: Any, **kwargs: Any) -> Any:
            return await function(ctx, **kwargs)

    else:

        async def run_job(ctx: Any, **kwargs: Any) -> Any:
            return await plan.run(ctx, kwargs)

    run_job.__qualname__ = run_job.__name__ = plan.name
    return run_job


def configure_job_options(queue: Queue, queue_config: QueueConfig, plans: dict[str, TaskPlan]) -> None:
    """Make ``queue`` apply the queue's job defaults, each ``@task``'s options and ``failed_ttl``."""
    queue_defaults: Any = dict(queue_config.job_defaults or {})
    task_defaults: dict[str, dict[str, Any]] = {}
    for name, function in queue_config.resolve_tasks().items():
        if isinstance(function, TaskHandle) and function.defaults:
            task_defaults[name] = {**queue_defaults, **function.defaults}
    options = QueueJobOptions(
        queue_defaults=queue_defaults,
        task_defaults=task_defaults,
        injected={name: plan.injected_names for name, plan in plans.items() if plan.injected_names},
        failed_ttl=queue_config.failed_ttl,
    )
    if isinstance(queue, JobOptionsQueue):
        queue.job_options = options
    elif queue_config.job_defaults or task_defaults:
        logger.warning(
            "queue %r: its broker_instance is a SAQ %s, not a litestar-saq queue, so job_defaults, "
            "@task options and failed_ttl do not apply to its jobs; give a Redis client or an asyncpg "
            "pool as broker_instance (or a dsn) instead",
            queue_config.name,
            type(queue).__name__,
        )
