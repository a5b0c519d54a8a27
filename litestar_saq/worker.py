"""Build the SAQ ``Worker`` of a queue: the one place where a ``QueueConfig`` becomes a running worker."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import TYPE_CHECKING, Any, TypedDict

from saq.worker import Worker

from litestar_saq.liveness import new_worker_id

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from litestar import Litestar
    from litestar.datastructures import State
    from saq.job import Job
    from saq.queue import Queue

    from litestar_saq.config import QueueConfig

__all__ = ("PluginWorker", "TaskContext", "UnknownTaskError", "build_worker")

logger = logging.getLogger("litestar_saq")


class UnknownTaskError(LookupError):
    """A job names a task that its worker does not have."""


class TaskContext(TypedDict, total=False):
    """What a task receives as ``ctx``."""

    job: Job
    """The job being run."""
    worker: Worker[Any]
    """The worker running it."""
    queue: Queue
    """The job's queue, e.g. to enqueue follow-up jobs."""
    app: Litestar
    """The Litestar application, loaded in this process."""
    state: State
    """The app's ``State``, filled by its startup hooks and lifespans."""
    exception: BaseException
    """In ``after_process``: the error the job raised, if any."""


class PluginWorker(Worker[Any]):
    """A SAQ ``Worker`` that stops promptly and never drops a running job.

    On stop, workers that are only waiting for a job and the upkeep loops are cancelled at once; jobs
    that are running get ``shutdown_grace_period_s`` to finish, then are cancelled, which makes SAQ
    put them back on the queue. Signal handling is one switch, so the same worker runs inside a web
    process (the server owns the signals) or on its own.
    """

    def __init__(self, queue: Queue, functions: Any, *, handle_signals: bool, **options: Any) -> None:
        grace_period = options.get("shutdown_grace_period_s")
        hard_deadline = options.get("cancellation_hard_deadline_s", 1.0)
        before_process = [self._mark_busy, *(options.pop("before_process", None) or [])]
        super().__init__(queue, functions, before_process=before_process, **options)
        if not handle_signals:
            self.SIGNALS = []
        self.grace_period_s: float = float(grace_period or 0)
        self.hard_deadline_s: float = float(hard_deadline)
        self._running_a_job: set[asyncio.Task[Any]] = set()
        self._plain_dequeue = queue.dequeue
        queue.dequeue = self._dequeue_and_mark  # type: ignore[method-assign]
        self._drain_lock = asyncio.Lock()
        self._drained = False

    async def start(self) -> None:
        """Run until ``stop()`` (or, with signal handling on, SIGINT/SIGTERM)."""
        self._drained = False
        await super().start()

    async def process(self) -> bool:
        try:
            return await super().process()
        except Exception:
            # SAQ lets a broker error escape when it cannot record a job's outcome (e.g. Redis is
            # restarting); the job stays active and the sweep recovers it. Log it, pause briefly so
            # an outage does not spin, and keep this slot alive.
            logger.exception("queue %r: a worker slot failed talking to the broker", self.queue.name)
            await asyncio.sleep(0.5)
            return False
        finally:
            self._running_a_job.discard(asyncio.current_task())

    async def _dequeue_and_mark(self, *args: Any, **kwargs: Any) -> Any:
        """The queue's ``dequeue``, marking the calling slot busy the moment it holds a job.

        From then until the job's outcome is written, cancelling the slot could strand the job, so
        a stopping worker gives it the grace period like any running job.
        """
        job = await self._plain_dequeue(*args, **kwargs)
        task = asyncio.current_task()
        if job is not None and task is not None:
            self._running_a_job.add(task)
        return job

    async def _mark_busy(self, ctx: Any) -> None:
        """First ``before_process`` hook: from here on this task runs a job and must not be cut short.

        Also refuses a job whose task this worker does not have, with a message that says so, and
        without retries: another attempt on the same worker cannot succeed.
        """
        task = asyncio.current_task()
        if task is not None:
            self._running_a_job.add(task)
        job = ctx["job"]
        if job.function not in self.functions:
            job.retries = job.attempts
            raise UnknownTaskError(
                f"queue {self.queue.name!r}: job {job.key!r} asks for task {job.function!r}, which this "
                f"worker does not have; its tasks are: {', '.join(sorted(self.functions)) or 'none'}. "
                "Add the task to the queue's QueueConfig(tasks=[...]) or fix the name used to enqueue."
            )

    async def stop(self) -> None:
        """Stop taking jobs, let running ones finish within the grace period, then run shutdown hooks."""
        self.event.set()
        async with self._drain_lock:
            if self._drained:
                return
            try:
                await self._drain()
            finally:
                self._drained = True

    async def _drain(self) -> None:
        tasks = [task for task in self.tasks if not task.done()]
        self.tasks.clear()
        running = [task for task in tasks if task in self._running_a_job]
        idle = [task for task in tasks if task not in self._running_a_job]
        # Upkeep loops and workers still waiting for a job have nothing to finish.
        for task in idle:
            task.cancel()
        if running:
            _, still_running = await asyncio.wait(running, timeout=self.grace_period_s)
            if still_running:
                logger.warning(
                    "queue %r: %d job(s) still running after the %.0f s grace period, aborting them so "
                    "they are retried: %s",
                    self.queue.name,
                    len(still_running),
                    self.grace_period_s,
                    [job.key for job in self.job_task_contexts],
                )
                for task in still_running:
                    task.cancel()
                await asyncio.wait(still_running, timeout=self.hard_deadline_s + 5)
        if idle:
            # A broker read can outlive its cancellation by up to the client's socket timeout; those
            # reads end when the queue disconnects, and hold no job, so they are not waited for.
            await asyncio.wait(idle, timeout=0.5)
        await self._requeue_unstarted_jobs()
        if self.queue.dequeue == self._dequeue_and_mark:
            self.queue.dequeue = self._plain_dequeue  # type: ignore[method-assign]
        self.pool.shutdown(wait=True, cancel_futures=True)
        for hook in _as_hooks(self.shutdown):
            await hook(self.context)

    async def _requeue_unstarted_jobs(self) -> None:
        """A slot cancelled between taking a job and starting it leaves the job active: put it back."""
        requeue = getattr(self.queue, "requeue_unstarted_jobs_of_worker", None)
        if requeue is None:
            return  # the queue recovers such jobs itself (memory, PostgreSQL) or through its sweep
        try:
            requeued = await requeue(self.id)
        except Exception:
            logger.exception("queue %r: could not requeue jobs taken but not started", self.queue.name)
            return
        if requeued:
            logger.info(
                "queue %r: requeued %d job(s) taken but not started: %s",
                self.queue.name,
                len(requeued),
                requeued,
            )


def build_worker(
    queue_config: QueueConfig,
    queue: Queue,
    app: Litestar,
    *,
    handle_signals: bool = False,
    extra_hooks: dict[str, list[Callable[[Any], Coroutine[Any, Any, Any]]]] | None = None,
) -> PluginWorker:
    """Build the worker for ``queue_config`` on ``queue``, with ``ctx`` holding the app and its state.

    Args:
        queue_config: the queue's configuration; dotted paths are imported here.
        queue: the connected queue the worker takes jobs from.
        app: the application whose ``state`` tasks see as ``ctx["state"]``.
        handle_signals: let the worker stop itself on SIGINT/SIGTERM (standalone workers only).
        extra_hooks: the plugin's own hooks by hook name; they run before the user's.
    """
    from litestar_saq.tracing import worker_hooks

    own_hooks = worker_hooks(app)
    for hook_field, hook_list in (extra_hooks or {}).items():
        own_hooks.setdefault(hook_field, []).extend(hook_list)
    hooks = {
        hook_field: [*own_hooks.get(hook_field, []), *queue_config.resolve_hooks(hook_field)]
        for hook_field in ("startup", "shutdown", "before_process", "after_process")
    }
    metadata = {"pid": os.getpid(), "host": socket.gethostname(), **(queue_config.metadata or {})}
    worker = PluginWorker(
        queue,
        list(queue_config.resolve_tasks().items()),
        handle_signals=handle_signals,
        concurrency=queue_config.concurrency,
        cron_jobs=queue_config.resolve_cron_jobs(),
        cron_tz=queue_config.cron_tz,
        startup=hooks["startup"] or None,
        shutdown=hooks["shutdown"] or None,
        before_process=hooks["before_process"],
        after_process=hooks["after_process"] or None,
        # Stats every 5 s and a sweep every 10 s (SAQ: 10 s and 60 s), so the jobs of a dead worker
        # are recovered within seconds rather than minutes; see RedisQueue.sweep.
        timers={"worker_info": 5, "sweep": 10, **(queue_config.timers or {})},
        id=new_worker_id(),
        dequeue_timeout=queue_config.dequeue_timeout,
        burst=queue_config.burst,
        max_burst_jobs=queue_config.max_burst_jobs,
        shutdown_grace_period_s=queue_config.shutdown_grace_period_s,
        cancellation_hard_deadline_s=queue_config.cancellation_hard_deadline_s,
        metadata=metadata,
        poll_interval=queue_config.poll_interval,
    )
    worker.context.update({"queue": queue, "app": app, "state": app.state})
    return worker


def _as_hooks(hooks: Any) -> list[Callable[[Any], Coroutine[Any, Any, Any]]]:
    if hooks is None:
        return []
    if callable(hooks):
        return [hooks]
    return list(hooks)
