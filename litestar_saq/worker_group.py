"""The workers of this process: ``build_worker`` makes one from a ``QueueConfig``, ``WorkerGroup`` runs them.

The app process (in-process queues), a worker child process and the testing helpers all start and stop
their workers through ``WorkerGroup``, so there is one way to do it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import TYPE_CHECKING

from litestar_saq.exceptions import TaskDefinitionError
from litestar_saq.liveness import new_worker_id
from litestar_saq.metrics import job_metric_hooks
from litestar_saq.recycling import EXIT_RECYCLE, RecycleLimits
from litestar_saq.runtime import is_worker_child
from litestar_saq.task_setup import runnable, task_plans
from litestar_saq.tracing import worker_hooks
from litestar_saq.worker import PluginWorker

if TYPE_CHECKING:
    from collections.abc import Sequence

    from litestar import Litestar
    from saq.queue import Queue
    from saq.types import PartialTimersDict

    from litestar_saq.config import QueueConfig, SAQConfig
    from litestar_saq.runtime import SAQRuntime

__all__ = ("WorkerGroup", "build_worker")

logger = logging.getLogger("litestar_saq")

HOOK_FIELDS = ("startup", "shutdown", "before_process", "after_process")
ABORT_CHECK_S = 0.25
"""Seconds between a worker's looks for aborted running jobs: an abort cancels its job within ~0.3 s."""


def build_worker(
    queue_config: QueueConfig, queue: Queue, app: Litestar, *, config: SAQConfig | None = None
) -> PluginWorker:
    """Build the worker for ``queue_config`` on ``queue``, with ``ctx`` holding the app and its state.

    Args:
        queue_config: the queue's configuration; dotted paths are imported here.
        queue: the connected queue the worker takes jobs from.
        app: the application whose ``state`` tasks see as ``ctx["state"]``.
        config: the plugin's configuration, for its own hooks (tracing); none without it.
    """
    own_hooks = worker_hooks(config) if config is not None else {}
    if config is not None and config.metrics_enabled:
        own_hooks = {
            name: [*own_hooks.get(name, []), *job_metric_hooks().get(name, [])] for name in HOOK_FIELDS
        }
    cron_tz = queue_config.cron_tz
    if isinstance(cron_tz, str):  # QueueConfig.__post_init__ already turned a valid name into a tzinfo
        raise TaskDefinitionError(f"queue {queue_config.name!r}: cron_tz {cron_tz!r} was not parsed")
    # Stats every 5 s and a sweep every 10 s (SAQ: 10 s and 60 s), so the jobs of a dead worker are
    # recovered within seconds rather than minutes; see RedisQueue.sweep. Aborts are looked for every
    # ABORT_CHECK_S (SAQ: 1 s) so a running job is cancelled within a second of its abort.
    timers: PartialTimersDict = {"worker_info": 5, "sweep": 10, "abort": ABORT_CHECK_S}  # type: ignore[typeddict-item]  # SAQ's "partial" dict inherits required keys
    timers.update(queue_config.timers or {})
    hooks = {
        hook_field: [*own_hooks.get(hook_field, []), *queue_config.resolve_hooks(hook_field)]
        for hook_field in HOOK_FIELDS
    }
    # Injection plans are made here, once per worker: a job only calls its providers.
    functions = {name: runnable(plan) for name, plan in task_plans(queue_config, config).items()}
    worker = PluginWorker(
        queue,
        list(functions.items()),
        id=new_worker_id(),
        concurrency=queue_config.concurrency,
        sync_task_threads=queue_config.sync_task_threads or queue_config.concurrency,
        cron_jobs=queue_config.resolve_cron_jobs(functions),
        cron_tz=cron_tz,
        startup=hooks["startup"],
        shutdown=hooks["shutdown"],
        before_process=hooks["before_process"],
        after_process=hooks["after_process"],
        timers=timers,
        dequeue_timeout=queue_config.dequeue_timeout,
        burst=queue_config.burst,
        max_burst_jobs=queue_config.max_burst_jobs,
        shutdown_grace_period_s=queue_config.shutdown_grace_period_s,
        cancellation_hard_deadline_s=queue_config.cancellation_hard_deadline_s,
        metadata={"pid": os.getpid(), "host": socket.gethostname(), **(queue_config.metadata or {})},
        poll_interval=queue_config.poll_interval,
        recycle_limits=_recycle_limits(queue_config),
    )
    worker.context.update({"queue": queue, "app": app, "state": app.state})
    return worker


def _recycle_limits(queue_config: QueueConfig) -> RecycleLimits | None:
    limits = RecycleLimits(queue_config.max_jobs_per_worker, queue_config.max_memory_per_worker_mb)
    if limits.max_jobs is None and limits.max_memory_mb is None:
        return None
    if is_worker_child():
        return limits
    # Only a supervisor can replace a recycled worker: `workers run` without --process has none.
    logger.warning(
        "queue %r: max_jobs_per_worker / max_memory_per_worker_mb ignored: only worker processes of "
        "`litestar workers run --process` or the server lifespan are recycled",
        queue_config.name,
    )
    return None


class WorkerGroup:
    """The workers of ``queue_names`` in this process, built from ``runtime`` and run as tasks.

    Args:
        app: the loaded application (``ctx["app"]``).
        runtime: the app's config and connected queues.
        queue_names: the queues whose workers run here.
        where: how log lines name this process ("the app process", "process 1234").
    """

    def __init__(self, app: Litestar, runtime: SAQRuntime, queue_names: Sequence[str], *, where: str) -> None:
        self.workers = [
            build_worker(
                runtime.config.get_queue_config(name),
                runtime.task_queues.get(name),
                app,
                config=runtime.config,
            )
            for name in queue_names
        ]
        self._where = where
        self._tasks: dict[asyncio.Task[None], PluginWorker] = {}
        self._failure_stops_process = False

    def start(self) -> None:
        """Start every worker as a task of the running loop."""
        for worker in self.workers:
            task = asyncio.create_task(worker.start(), name=f"saq-worker-{worker.queue.name}")
            task.add_done_callback(self._log_failure)
            self._tasks[task] = worker
            logger.info("queue %r: worker running in %s", worker.queue.name, self._where)

    async def stop(self) -> None:
        """Stop every worker (running jobs get their grace period) and wait until they have."""
        await asyncio.gather(*(worker.stop() for worker in self.workers), return_exceptions=True)
        if self._tasks:
            await asyncio.wait(self._tasks)

    async def run_until(self, stop_requested: asyncio.Event) -> int:
        """Run until ``stop_requested``, a worker fails, or every worker finished (burst); then stop.

        Returns:
            0 after a requested stop or when every worker finished, 1 if a worker failed,
            ``EXIT_RECYCLE`` if a worker reached a recycling limit (the process is to be replaced).
        """
        self._failure_stops_process = True
        exit_code = 0
        stop_waiter = asyncio.create_task(stop_requested.wait())
        running = set(self._tasks)
        while running and not stop_requested.is_set():
            await asyncio.wait([*running, stop_waiter], return_when=asyncio.FIRST_COMPLETED)
            ended = {task for task in running if task.done()}
            running -= ended
            recycled = [self._tasks[task] for task in ended if self._tasks[task].recycle_limits.reached]
            if any(not task.cancelled() and task.exception() is not None for task in ended):
                exit_code = 1
                stop_requested.set()
            elif recycled:
                logger.info(
                    "queue %r: recycling %s: %s",
                    recycled[0].queue.name,
                    self._where,
                    recycled[0].recycle_limits.reached,
                )
                exit_code = EXIT_RECYCLE
                stop_requested.set()
        stop_waiter.cancel()
        await self.stop()
        return exit_code

    def _log_failure(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        logger.error(
            "queue %r: worker failed in %s%s",
            self._tasks[task].queue.name,
            self._where,
            ", stopping this process" if self._failure_stops_process else "",
            exc_info=task.exception(),
        )
