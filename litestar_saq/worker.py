"""``PluginWorker``: a SAQ ``Worker`` that owns its lifecycle, stops promptly and never drops a job.

It subclasses SAQ's ``Worker`` and overrides its public lifecycle methods (``start``, ``stop``,
``process``); SAQ's own pieces still do the upkeep (``upkeep``: schedule, sweep, abort, worker info).
Signals are not its business: the process that runs it (``serve_queues``, a web server) owns them.

A worker runs ``concurrency`` slots. Each slot takes a job, runs it and records its outcome. From the
moment the queue hands a slot a job, the slot is *busy*: a stop never cuts it short before the grace
period, so a job is never left half-started. On stop, idle slots and upkeep loops are cancelled at
once; busy slots get ``shutdown_grace_period_s`` to finish, then their jobs are cancelled and put back
on the queue.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Callable, Collection, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import timezone
from typing import TYPE_CHECKING, Any

from saq.job import Status
from saq.types import Context, JobTaskContext
from saq.utils import now
from saq.worker import Worker, ensure_coroutine_function

from litestar_saq.exceptions import UnknownTaskError
from litestar_saq.job_outcome import record_cancellation, record_failure, result_within_timeout
from litestar_saq.recycling import RecycleLimits

if TYPE_CHECKING:
    from datetime import tzinfo

    from litestar import Litestar
    from litestar.datastructures import State
    from saq.job import CronJob, Job
    from saq.queue import Queue
    from saq.types import FunctionsType, PartialTimersDict, WorkerInfo

__all__ = ("PluginWorker", "TaskContext", "WorkerHook", "drain_budget_s")

logger = logging.getLogger("litestar_saq")
saq_logger = logging.getLogger("saq")

WorkerHook = Callable[[Any], Coroutine[Any, Any, Any]]
"""A worker hook (``startup``, ``before_process``…): an async function of ``ctx``."""

OUTCOME_WRITE_S = 5.0
"""After a job is cancelled at the end of the grace period: time to record that it goes back."""
IDLE_SLOT_WAIT_S = 0.5
"""How long a stop waits for cancelled idle slots before cancelling them again."""
IDLE_SLOT_RETRIES = 6
"""How often a stop cancels an idle slot that has not ended (a broker read may lose a cancellation)."""
HEARTBEAT_AT = "heartbeat_at"
"""Key of a worker's metadata holding the time (epoch ms) of its last heartbeat."""
BROKER_ERROR_PAUSE_S = 0.5
"""Pause of a slot after a broker error, so an outage does not spin."""


def drain_budget_s(shutdown_grace_period_s: float | None, cancellation_hard_deadline_s: float) -> float:
    """The longest a worker's ``stop()`` waits for its jobs; shutdown hooks come on top of it.

    Running jobs get the grace period (``None`` counts as 0), then are cancelled and get the hard
    deadline to end, plus time to write that they go back on the queue.
    """
    idle_slots_s = IDLE_SLOT_WAIT_S * IDLE_SLOT_RETRIES
    return (shutdown_grace_period_s or 0) + cancellation_hard_deadline_s + OUTCOME_WRITE_S + idle_slots_s


class TaskContext(Context, total=False):
    """What a task receives as ``ctx``: SAQ's ``job``, ``worker``, ``queue``, and the app."""

    app: Litestar
    """The Litestar application, loaded in this process."""
    state: State
    """The app's ``State``, filled by its startup hooks and lifespans."""


class PluginWorker(Worker[TaskContext]):
    """A SAQ ``Worker`` whose stop never drops a job: see the module's docstring.

    Arguments are SAQ ``Worker``'s, plus ``sync_task_threads``: how many ``def`` tasks run at once (the
    thread pool's size; default ``concurrency``) and ``recycle_limits`` (``litestar_saq.recycling``).
    ``shutdown_grace_period_s`` may be under a second.
    """

    def __init__(
        self,
        queue: Queue,
        functions: FunctionsType[TaskContext],
        *,
        id: str | None = None,
        concurrency: int = 10,
        sync_task_threads: int | None = None,
        cron_jobs: Collection[CronJob[TaskContext]] | None = None,
        cron_tz: tzinfo = timezone.utc,
        startup: Collection[WorkerHook] = (),
        shutdown: Collection[WorkerHook] = (),
        before_process: Collection[WorkerHook] = (),
        after_process: Collection[WorkerHook] = (),
        timers: PartialTimersDict | None = None,
        dequeue_timeout: float = 0.0,
        burst: bool = False,
        max_burst_jobs: int | None = None,
        shutdown_grace_period_s: float | None = None,
        cancellation_hard_deadline_s: float = 1.0,
        metadata: dict[str, Any] | None = None,
        poll_interval: float = 0.0,
        recycle_limits: RecycleLimits | None = None,
    ) -> None:
        metadata = {} if metadata is None else metadata
        super().__init__(
            queue,
            functions,
            id=id,
            concurrency=concurrency,
            cron_jobs=cron_jobs,
            cron_tz=cron_tz,
            startup=list(startup),
            shutdown=list(shutdown),
            before_process=list(before_process),
            after_process=list(after_process),
            timers=timers,
            dequeue_timeout=dequeue_timeout,
            burst=burst,
            max_burst_jobs=max_burst_jobs,
            cancellation_hard_deadline_s=cancellation_hard_deadline_s,
            metadata=metadata,
            poll_interval=poll_interval,
        )
        self._shutdown_hooks = list(shutdown)
        # SAQ writes this dict with every heartbeat; ``worker_info`` dates it there (see _status.py).
        self._heartbeat_metadata = metadata
        self.sync_task_threads = sync_task_threads or concurrency
        """How many sync (``def``) tasks run at once: the size of the worker's thread pool."""
        self.pool = self._new_thread_pool()
        self.grace_period_s = float(shutdown_grace_period_s or 0)
        self.hard_deadline_s = cancellation_hard_deadline_s
        self.poll_interval = poll_interval
        self.recycle_limits = recycle_limits or RecycleLimits()
        self._slots: set[asyncio.Task[None]] = set()
        self._busy_slots: set[asyncio.Task[Any]] = set()
        self._upkeep_tasks: list[asyncio.Task[None]] = []
        self._ran_before = False
        self._not_running = asyncio.Event()
        self._not_running.set()

    def _new_thread_pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(self.sync_task_threads, thread_name_prefix=f"saq-{self.queue.name}")

    @property
    def drain_budget_s(self) -> float:
        """The longest ``stop()`` waits for running jobs (see ``drain_budget_s()``)."""
        return drain_budget_s(self.grace_period_s, self.hard_deadline_s)

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Run until ``stop()``; a ``stop()`` that comes first makes this return at once."""
        ran_before, self._ran_before = self._ran_before, True
        if self.event.is_set():
            if not ran_before:
                return  # stop() came before this first start
            self.event.clear()  # a new run after a finished one
        self._not_running.clear()
        saq_logger.info("Worker starting: %r", self.queue)
        try:
            for hook in self.startup or ():
                await hook(self.context)
            if not self.event.is_set():
                self._upkeep_tasks = await self.upkeep()
                for _ in range(self.concurrency):
                    self._open_slot()
                await self.event.wait()
        finally:
            try:
                await self._drain()
            finally:
                self._not_running.set()

    async def stop(self) -> None:
        """Stop taking jobs; return when running jobs finished or were put back and shutdown hooks ran."""
        self.event.set()
        await self._not_running.wait()

    def _open_slot(self) -> None:
        slot = asyncio.create_task(self._run_slot(), name=f"saq-slot-{self.queue.name}")
        self._slots.add(slot)
        slot.add_done_callback(self._slot_closed)

    async def _run_slot(self) -> None:
        while not self.event.is_set() and self.recycle_limits.reserve():
            took_job = await self.process()
            if self.recycle_limits.count(took_job):  # to be recycled: idle slots end now, busy ones later
                for idle in self._slots - self._busy_slots - {asyncio.current_task()}:
                    idle.cancel()
            if self.burst and self._burst_is_over(took_job):
                return

    def _slot_closed(self, slot: asyncio.Task[None]) -> None:
        self._slots.discard(slot)
        if self.recycle_limits.reached and not self._slots:
            self.event.set()  # to be recycled, and the last running job finished
        if slot.cancelled() or self.event.is_set():
            return
        error = slot.exception()
        if error is not None:
            logger.error("queue %r: a worker slot failed; opening a new one", self.queue.name, exc_info=error)
            self._open_slot()
        elif self.burst and not self._slots:
            self.event.set()  # burst mode: every slot found the queue empty or the job limit reached

    def _burst_is_over(self, took_job: bool) -> bool:
        if not took_job:
            self.burst_condition_met = True
        elif self.max_burst_jobs is not None:
            self.burst_jobs_processed += 1
            if self.burst_jobs_processed >= self.max_burst_jobs:
                self.burst_condition_met = True
        return self.burst_condition_met

    async def _drain(self) -> None:
        slots = [slot for slot in self._slots if not slot.done()]
        busy = [slot for slot in slots if slot in self._busy_slots]
        idle = [slot for slot in slots if slot not in self._busy_slots]
        upkeep, self._upkeep_tasks = self._upkeep_tasks, []
        for task in (*idle, *upkeep):
            task.cancel()
        if busy:
            _, late = await asyncio.wait(busy, timeout=self.grace_period_s)
            if late:
                logger.warning(
                    "queue %r: %d job(s) still running after the %.0f s grace period, aborting them so "
                    "they are retried: %s",
                    self.queue.name,
                    len(late),
                    self.grace_period_s,
                    [job.key for job in self.job_task_contexts],
                )
                for slot in late:
                    slot.cancel()
                await asyncio.wait(late, timeout=self.hard_deadline_s + OUTCOME_WRITE_S)
        await self._end_idle_tasks([*idle, *upkeep])
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.pool = self._new_thread_pool()  # for a later start()
        for hook in self._shutdown_hooks:
            await hook(self.context)

    async def _end_idle_tasks(self, tasks: list[asyncio.Task[Any]]) -> None:
        """Wait for cancelled idle slots and upkeep loops, cancelling again any that swallowed it.

        A broker client may lose a cancellation that lands while it reconnects or reads; such a task
        would go on taking jobs after the stop, so it is cancelled again until it ends.
        """
        for _ in range(IDLE_SLOT_RETRIES):
            if not tasks:
                return
            _, still_running = await asyncio.wait(tasks, timeout=IDLE_SLOT_WAIT_S)
            for task in still_running:
                task.cancel()
            tasks = list(still_running)
        if tasks:
            logger.warning(
                "queue %r: %d idle task(s) ignored their cancellation", self.queue.name, len(tasks)
            )

    async def worker_info(self, ttl: int = 60) -> WorkerInfo:
        """Write this worker's heartbeat: SAQ's stats, with its time in ``metadata["heartbeat_at"]`` (ms)."""
        self._heartbeat_metadata[HEARTBEAT_AT] = now()
        return await super().worker_info(ttl)

    # --- one job -----------------------------------------------------------------------------------

    async def process(self) -> bool:
        """Take one job and run it to its recorded outcome; return whether a job was taken."""
        try:
            job = await self.queue.dequeue(timeout=self.dequeue_timeout, poll_interval=self.poll_interval)
        except Exception:
            logger.exception("queue %r: taking a job failed; trying again shortly", self.queue.name)
            await asyncio.sleep(BROKER_ERROR_PAUSE_S)
            return False
        if job is None:
            return False
        slot = asyncio.current_task()
        assert slot is not None, "process() runs in a task"
        self._busy_slots.add(slot)
        try:
            await self._run(job)
        except Exception:
            # The broker failed while the job's outcome was being written (e.g. Redis restarting):
            # the job stays active and the sweep recovers it.
            logger.exception("queue %r: could not record the outcome of job %s", self.queue.name, job.key)
            await asyncio.sleep(BROKER_ERROR_PAUSE_S)
        finally:
            self._busy_slots.discard(slot)
        return True

    async def _run(self, job: Job) -> None:
        job.started = now()
        job.attempts += 1
        job.worker_id = self.id
        context = TaskContext(**self.context, job=job)
        running: JobTaskContext | None = None
        try:
            await job.update(status=Status.ACTIVE)
            for hook in self.before_process or ():
                await hook(context)
            if saq_logger.isEnabledFor(logging.INFO):
                saq_logger.info("Processing %s", job.info(saq_logger.isEnabledFor(logging.DEBUG)))
            function = ensure_coroutine_function(self._function_of(job), self.pool)
            task = asyncio.create_task(function(context, **(job.kwargs or {})))
            running = JobTaskContext(task=task, aborted=None)
            self.job_task_contexts[job] = running
            result = await result_within_timeout(task, job)
            if running["aborted"] is None:
                if job.status == Status.ABORTING:  # the task refreshed its job, saw the abort and ended
                    await job.finish(Status.ABORTED, error=job.error)
                else:
                    await job.finish(Status.COMPLETE, result=result)
        except asyncio.CancelledError:
            await record_cancellation(job, running, self.hard_deadline_s)
        except Exception as exc:
            context["exception"] = exc
            await record_failure(job, running, traceback.format_exc(), self.hard_deadline_s)
        finally:
            if running is not None and self.job_task_contexts.get(job) is running:
                del self.job_task_contexts[job]
            for hook in self.after_process or ():
                try:
                    await hook(context)
                except (Exception, asyncio.CancelledError):
                    logger.exception(
                        "queue %r: an after_process hook failed for job %s", self.queue.name, job.key
                    )

    def _function_of(self, job: Job) -> Callable[..., Any]:
        function = self.functions.get(job.function)
        if function is None:
            job.retries = job.attempts  # another attempt on this worker cannot succeed
            raise UnknownTaskError(
                f"queue {self.queue.name!r}: job {job.key!r} asks for task {job.function!r}, which this "
                f"worker does not have; its tasks are: {', '.join(sorted(self.functions)) or 'none'}. "
                "Add the task to the queue's QueueConfig(tasks=[...]) or fix the name used to enqueue."
            )
        return function
