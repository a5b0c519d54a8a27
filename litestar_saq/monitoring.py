"""Keep long jobs alive: ``monitored_job`` sends heartbeats while a task runs.

SAQ sweeps a running job as stuck when it has a ``heartbeat`` and has not been touched for that many
seconds. A long task decorated with ``monitored_job`` touches its job in the background, so it can run
for as long as it needs with a short ``heartbeat``, and a job whose worker died is still found quickly::

    from litestar_saq import monitored_job

    @monitored_job()                      # every heartbeat / 2 seconds (at least 1 s)
    async def rebuild_index(ctx, *, shard: int) -> None:
        ...

    await queue.enqueue("rebuild_index", shard=3, heartbeat=30, timeout=0)

Heartbeats only prove liveness: they do not extend ``timeout``, which still limits the whole run (give
long jobs ``timeout=0`` or a generous value and let the heartbeat find dead workers).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

from saq.job import Status
from saq.utils import now

from litestar_saq.backends.deadline import within
from litestar_saq.exceptions import TaskDefinitionError

if TYPE_CHECKING:
    from saq.job import Job
    from saq.queue import Queue
    from saq.queue.redis import RedisQueue

__all__ = (
    "DEFAULT_INTERVAL_WITHOUT_HEARTBEAT",
    "MIN_DEFAULT_INTERVAL",
    "heartbeat_interval",
    "monitored_job",
)

logger = logging.getLogger("litestar_saq.monitoring")

TaskFunction = TypeVar("TaskFunction", bound=Callable[..., Awaitable[Any]])

MIN_DEFAULT_INTERVAL = 1.0
"""The shortest interval chosen automatically, in seconds (an explicit ``interval`` may be shorter)."""

DEFAULT_INTERVAL_WITHOUT_HEARTBEAT = 5.0
"""Seconds between heartbeats of a job enqueued without ``heartbeat``.

Such a job is never swept for missing heartbeats, but its ``touched`` time still tells the dashboard and
``workers status`` that it is alive; one write every 5 s per running job costs next to nothing.
"""

_WATCH_ATTEMPTS = 5
"""How often a Redis heartbeat retries when another write to the job races with it."""


@overload
def monitored_job(interval: TaskFunction, /) -> TaskFunction: ...


@overload
def monitored_job(interval: float | None = None) -> Callable[[TaskFunction], TaskFunction]: ...


def monitored_job(
    interval: float | TaskFunction | None = None,
) -> TaskFunction | Callable[[TaskFunction], TaskFunction]:
    """Send heartbeats for the job while the decorated task runs, so a long job is not swept as stuck.

    Use as ``@monitored_job()``, ``@monitored_job(interval=10)``, ``@monitored_job(10)`` or plain
    ``@monitored_job``. The task keeps its name (SAQ registers tasks by ``__qualname__``), signature
    and ``async def``-ness. Its ``ctx`` may be the first positional parameter or a keyword-only
    parameter named ``ctx``.

    Heartbeats run on the worker's event loop beside the task and stop when the task returns, raises or
    is cancelled (abort, timeout, shutdown), and as soon as the job is no longer active in the broker:
    a heartbeat never turns an aborting job back into an active one, nor touches a later attempt.

    Args:
        interval: seconds between heartbeats. ``None``: half the job's ``heartbeat``, at least 1 s;
            for a job without ``heartbeat``, every ``DEFAULT_INTERVAL_WITHOUT_HEARTBEAT`` seconds.
            (The task itself, when used without parentheses.)

    Raises:
        TypeError: the task is not an ``async def`` function, or ``interval`` is not positive.
    """
    if callable(interval):
        return monitored_job()(interval)
    if interval is not None and (isinstance(interval, bool) or not interval > 0):
        raise TaskDefinitionError(
            f"monitored_job: interval must be a positive number of seconds, got {interval!r}"
        )
    seconds = interval

    def decorate(task: TaskFunction) -> TaskFunction:
        if not inspect.iscoroutinefunction(task):
            raise TaskDefinitionError(
                f"monitored_job: {getattr(task, '__qualname__', task)!r} is not an 'async def' function; "
                "SAQ tasks must be coroutine functions"
            )
        ctx_name, ctx_keyword_only = _ctx_parameter(task)

        @functools.wraps(task)
        async def run_with_heartbeats(*args: Any, **kwargs: Any) -> Any:
            if ctx_name is not None and ctx_name in kwargs:
                ctx = kwargs[ctx_name]
            elif args:
                ctx = args[0]
                if ctx_keyword_only and ctx_name is not None:
                    # SAQ passes ctx positionally; a task that takes it keyword-only gets it by name.
                    args, kwargs = args[1:], {**kwargs, ctx_name: ctx}
            else:
                ctx = None
            job = ctx.get("job") if isinstance(ctx, Mapping) else None
            if job is None or job.queue is None:
                # Called outside a worker (a test, a direct call): nothing to keep alive.
                return await task(*args, **kwargs)
            stop = asyncio.Event()
            beats = asyncio.create_task(
                _send_heartbeats(job, heartbeat_interval(job, seconds), stop),
                name=f"saq-heartbeat-{job.key}",
            )
            try:
                return await task(*args, **kwargs)
            finally:
                await _stop_heartbeats(beats, stop)

        return run_with_heartbeats  # type: ignore[return-value]  # same signature, via functools.wraps

    return decorate


def heartbeat_interval(job: Job, interval: float | None = None) -> float:
    """Seconds between heartbeats for ``job``: ``interval`` if given, else half its ``heartbeat`` (≥ 1 s)."""
    if interval is not None:
        if job.heartbeat and interval >= job.heartbeat:
            logger.warning(
                "queue %r: job %s sends heartbeats every %.1f s but its heartbeat is %d s; it may be swept",
                job.queue.name if job.queue else None,
                job.key,
                interval,
                job.heartbeat,
            )
        return interval
    if not job.heartbeat:
        return DEFAULT_INTERVAL_WITHOUT_HEARTBEAT
    return max(MIN_DEFAULT_INTERVAL, job.heartbeat / 2)


def _ctx_parameter(task: Callable[..., Any]) -> tuple[str | None, bool]:
    """The name of the task's ``ctx`` parameter and whether it is keyword-only."""
    parameters = inspect.signature(task).parameters
    if "ctx" in parameters:
        return "ctx", parameters["ctx"].kind is inspect.Parameter.KEYWORD_ONLY
    for parameter in parameters.values():
        if parameter.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            return parameter.name, False
        break
    return None, False


async def _stop_heartbeats(beats: asyncio.Task[None], stop: asyncio.Event) -> None:
    """Stop the heartbeat loop and wait for it, so no heartbeat lands after the job's final write."""
    stop.set()
    try:
        # Shielded: if this task is cancelled again while waiting, an in-flight heartbeat still
        # completes rather than leaving a half-done write behind.
        await asyncio.shield(beats)
    except asyncio.CancelledError:
        beats.cancel()
        raise


async def _send_heartbeats(job: Job, interval: float, stop: asyncio.Event) -> None:
    queue = job.queue
    assert queue is not None  # checked by the caller
    attempt = (job.attempts, job.started)
    failures = 0
    while True:
        try:
            await within(stop.wait(), interval)
            return
        except asyncio.TimeoutError:
            pass
        try:
            still_active = await touch_job(queue, job, attempt)
        except Exception:
            # A broker hiccup must not fail the job: log it and try again at the next beat.
            failures += 1
            logger.warning(
                "queue %r: heartbeat %d of job %s failed",
                queue.name,
                failures,
                job.key,
                exc_info=True,
                extra={"queue": queue.name, "job_key": job.key, "heartbeat_failures": failures},
            )
            continue
        if not still_active:
            logger.debug("queue %r: job %s is no longer active, heartbeats stop", queue.name, job.key)
            return


async def touch_job(queue: Queue, job: Job, attempt: tuple[int, int]) -> bool:
    """Set the stored job's ``touched`` to now if it is still this attempt and active.

    Returns:
        ``False`` when the job is gone, aborting, finished or re-run by a later attempt (stop beating).
    """
    from saq.queue.redis import RedisQueue

    if isinstance(queue, RedisQueue):
        return await _touch_redis_job(queue, job, attempt)
    stored = await queue.job(job.key)
    if not _is_this_active_attempt(stored, attempt):
        return False
    # The in-memory queue keeps an abort that races with this write, asyncpg's and SAQ's PostgreSQL
    # queues keep the stored status of a status-less update, so job.update() is safe there.
    await job.update()
    return True


async def _touch_redis_job(queue: RedisQueue, job: Job, attempt: tuple[int, int]) -> bool:
    """Touch the job in one optimistic transaction, so it cannot undo an abort written meanwhile.

    SAQ's Redis ``update()`` reads the status and writes the whole job in two steps; an abort (from the
    sweep or a user) between them would be overwritten. WATCH makes the write fail instead, and the
    next try sees the abort.
    """
    from redis.exceptions import WatchError

    job_id = job.id
    async with queue.redis.pipeline(transaction=True) as pipe:
        for _ in range(_WATCH_ATTEMPTS):
            try:
                await pipe.watch(job_id)
                stored = queue.deserialize(await pipe.get(job_id))
                if stored is None or not _is_this_active_attempt(stored, attempt):
                    return False
                stored.touched = job.touched = now()
                pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves multi() unannotated
                pipe.set(job_id, queue.serialize(stored), keepttl=True)
                await pipe.execute()
                return True
            except WatchError:
                continue
    logger.warning("queue %r: heartbeat of job %s skipped, the job kept changing", queue.name, job.key)
    return True


def _is_this_active_attempt(stored: Job | None, attempt: tuple[int, int]) -> bool:
    return (
        stored is not None and stored.status == Status.ACTIVE and (stored.attempts, stored.started) == attempt
    )
