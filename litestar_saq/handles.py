"""``@task``: a task function becomes a typed handle to enqueue, apply or run after the response.

::

    @task(queue="default", timeout=60)
    async def send_email(ctx: TaskContext, *, recipient: str, mailer: Mailer = injected()) -> None: ...

    await send_email.enqueue(recipient="ada@example.com")          # checked by mypy
    await send_email.with_options(key="welcome-ada").enqueue(recipient="ada@example.com")
    Response(..., background=send_email.after_response(recipient="ada@example.com"))

The handle is still the function (``await send_email(ctx, recipient=..., mailer=...)`` runs it), and a
queue lists it like any task: ``QueueConfig(tasks=[send_email])``. It enqueues on the queue of the app
that started last in this process (``runtime.started_runtimes``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Protocol, TypedDict, TypeVar, overload

from litestar.background_tasks import BackgroundTask
from litestar.utils.predicates import is_async_callable

from litestar_saq.exceptions import JobNotFoundError, TaskDefinitionError, TaskNotEnqueueableError
from litestar_saq.job_options import JobDefaults, JobOptions, JobOptionsQueue
from litestar_saq.runtime import started_runtimes

if TYPE_CHECKING:
    from saq.job import Job
    from saq.queue import Queue
    from typing_extensions import Unpack

__all__ = ("AsyncTaskHandle", "BoundTask", "SyncTaskHandle", "TaskHandle", "task")

logger = logging.getLogger("litestar_saq")

P = ParamSpec("P")
R = TypeVar("R")


class BoundTask(Generic[P, R]):
    """A task with per-call job options (``handle.with_options(...)``); enqueue, apply or run it later."""

    def __init__(self, handle: TaskHandle[P, R], options: JobOptions) -> None:
        self._handle = handle
        self._options = options

    def with_options(
        self,
        *,
        key: str | None = None,
        scheduled: int | None = None,
        timeout: int | None = None,
        heartbeat: int | None = None,
        retries: int | None = None,
        ttl: int | None = None,
        retry_delay: float | None = None,
        retry_backoff: bool | float | None = None,
        priority: int | None = None,
        group_key: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> BoundTask[P, R]:
        """The same task with these job options (over the ones already bound); ``None`` leaves one unset.

        They win over ``@task(...)`` and ``QueueConfig.job_defaults``.
        """
        given = {
            "key": key,
            "scheduled": scheduled,
            "timeout": timeout,
            "heartbeat": heartbeat,
            "retries": retries,
            "ttl": ttl,
            "retry_delay": retry_delay,
            "retry_backoff": retry_backoff,
            "priority": priority,
            "group_key": group_key,
            "meta": meta,
        }
        options: Any = {
            **self._options,
            **{name: value for name, value in given.items() if value is not None},
        }
        return BoundTask(self._handle, options)

    async def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        """Enqueue a job of this task with ``kwargs`` and return it.

        With a ``key`` that is already queued or running, that job is returned (SAQ enqueues none).

        Raises:
            TaskNotEnqueueableError: no started app lists this task, or ``args`` were given.
            TypeError: a kwarg is named like a parameter the worker injects.
        """
        if args:
            raise self._handle._positional_error(args)
        return await self._enqueue(kwargs)

    async def _enqueue(self, kwargs: dict[str, Any]) -> Job:
        handle = self._handle
        cached = handle._cached  # the fast path of handle._queue(), inlined: it runs for every enqueue
        queue = (
            cached[1] if cached is not None and cached[0] == started_runtimes.generation else handle._queue()
        )
        options = self._options
        if options:
            job = await queue.enqueue(handle.name, **options, **kwargs)
        else:
            job = await queue.enqueue(handle.name, **kwargs)
        if job is None:
            job = await queue.job(options.get("key", ""))
            if job is None:
                raise JobNotFoundError(
                    f"queue {queue.name!r}: task {handle.name!r}: a duplicate key vanished"
                )
        return job

    async def enqueue_many(self, calls: Iterable[Mapping[str, Any]]) -> list[Job | None]:
        """Enqueue one job of this task per mapping of kwargs, in one round trip per batch.

        Returns the jobs in order, ``None`` where a ``key`` was already queued or running.
        """
        handle = self._handle
        options = self._options
        queue = handle._queue()
        if not isinstance(queue, JobOptionsQueue):
            return [await queue.enqueue(handle.name, **options, **call) for call in calls]
        return await queue.enqueue_many([(handle.name, {**options, **call}) for call in calls])

    async def apply(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Enqueue a job of this task, wait for it and return its result (``saq.JobError`` if it failed)."""
        handle = self._handle
        if args:
            raise handle._positional_error(args)
        job_kwargs: dict[str, Any] = {**self._options, **kwargs}
        result: R = await handle._queue().apply(handle.name, **job_kwargs)
        return result

    def after_response(self, *args: P.args, **kwargs: P.kwargs) -> BackgroundTask:
        """A ``BackgroundTask`` for ``Response(..., background=...)``: enqueue once the response is sent.

        An enqueue that fails then is logged with the queue, the task and the cause; the response,
        already sent, is not affected.
        """
        if args:
            raise self._handle._positional_error(args)
        return BackgroundTask(self._enqueue_after_response, kwargs)

    async def _enqueue_after_response(self, kwargs: dict[str, Any]) -> None:
        handle = self._handle
        try:
            await self._enqueue(kwargs)
        except Exception as exc:
            logger.exception(
                "queue %r: enqueuing task %r after the response failed: %s: %s",
                handle.queue_name_for_logs(),
                handle.name,
                type(exc).__name__,
                exc,
            )


class TaskHandle(BoundTask[P, R]):
    """A task declared with ``@task``: the function, its name, queue, job options and dependencies."""

    def __init__(
        self,
        function: Callable[..., Any],
        *,
        name: str | None,
        queue: str | None,
        defaults: JobDefaults,
        dependencies: Mapping[str, Any] | None,
    ) -> None:
        super().__init__(self, JobOptions())
        self.__wrapped__ = function
        self.__doc__ = function.__doc__
        self.__module__ = function.__module__
        self.__name__ = getattr(function, "__name__", self.__class__.__name__)
        self.function = function
        """The decorated function."""
        self.name: str = name or function.__qualname__
        """The name SAQ registers and jobs carry (``name=``, else the function's ``__qualname__``)."""
        self.__qualname__ = self.name
        self.queue_name = queue
        """The queue given to ``@task(queue=...)``, else ``None`` (the one queue that lists the task)."""
        self.defaults = defaults
        """Job options of every job of this task, below those of an enqueue call."""
        self.dependencies: dict[str, Any] = dict(dependencies or {})
        """Providers for this task only; they win over the queue's and the app's."""
        self.is_sync = not is_async_callable(function)
        """A plain ``def``: the worker runs it in a thread."""
        self._cached: tuple[int, Queue] | None = None

    def __repr__(self) -> str:
        return f"<task {self.name!r}>"

    def queue_name_for_logs(self) -> str | None:
        """The queue this task enqueues on, if it can be known now."""
        try:
            return self._queue().name
        except Exception:
            return self.queue_name

    def _queue(self) -> Queue:
        generation = started_runtimes.generation
        cached = self._cached
        if cached is not None and cached[0] == generation:
            return cached[1]
        queue = self._find_queue()
        self._cached = (generation, queue)
        return queue

    def _find_queue(self) -> Queue:
        runtime = started_runtimes.newest()
        if runtime is None:
            raise TaskNotEnqueueableError(
                f"task {self.name!r}: no app in this process has started the SAQPlugin, so there is no "
                "queue to enqueue on; enqueue while the app runs (inside its lifespan, a handler or a task)"
            )
        listing = runtime.queues_of_task.get(self, ())
        if self.queue_name is not None:
            if self.queue_name not in listing:
                raise TaskNotEnqueueableError(
                    f"task {self.name!r}: @task(queue={self.queue_name!r}) but that queue's "
                    f"QueueConfig(tasks=[...]) does not list it; add {self.name} there"
                )
            return runtime.task_queues.get(self.queue_name)
        if not listing:
            raise TaskNotEnqueueableError(
                f"task {self.name!r} is listed in no queue of the running app; add it to "
                "QueueConfig(tasks=[...]) of the queue that should run it"
            )
        if len(listing) > 1:
            raise TaskNotEnqueueableError(
                f"task {self.name!r} is listed in queues {', '.join(map(repr, listing))}; say which one "
                f"enqueues it with @task(queue=...)"
            )
        return runtime.task_queues.get(listing[0])

    def _positional_error(self, args: tuple[Any, ...]) -> TaskNotEnqueueableError:
        return TaskNotEnqueueableError(
            f"task {self.name!r}: job arguments are passed by name, got {len(args)} positional argument(s)"
        )


class AsyncTaskHandle(TaskHandle[P, R]):
    """The handle of an ``async def`` task; calling it runs the function."""

    def __call__(self, ctx: Any, /, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        result: Coroutine[Any, Any, R] = self.function(ctx, *args, **kwargs)
        return result


class SyncTaskHandle(TaskHandle[P, R]):
    """The handle of a plain ``def`` task (run in a worker thread); calling it runs the function."""

    def __call__(self, ctx: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
        result: R = self.function(ctx, *args, **kwargs)
        return result


class TaskSettings(TypedDict, total=False):
    """What ``@task(...)`` takes: the registered name, the queue, job options and providers."""

    name: str | None
    """The name SAQ registers; defaults to the function's ``__qualname__``."""
    queue: str | None
    """The queue that runs it; needed only when several queues list it."""
    timeout: int | None
    """Job option (seconds), below an enqueue's own options and above ``QueueConfig.job_defaults``."""
    retries: int | None
    """Job option: how many attempts a job gets."""
    ttl: int | None
    """Job option: seconds to keep a finished job."""
    heartbeat: int | None
    """Job option: seconds without a heartbeat after which a running job counts as stuck."""
    retry_delay: float | None
    """Job option: seconds before a retry."""
    retry_backoff: bool | float | None
    """Job option: grow the retry delay exponentially (up to this many seconds when a number)."""
    dependencies: Mapping[str, Any] | None
    """Providers for this task, over the queue's and the app's (``Provide`` or callables)."""


class TaskDecorator(Protocol):
    """What ``@task(...)`` with arguments returns."""

    @overload
    def __call__(  # type: ignore[overload-overlap]  # an async def matches both; this one is meant
        self, function: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]], /
    ) -> AsyncTaskHandle[P, R]: ...

    @overload
    def __call__(self, function: Callable[Concatenate[Any, P], R], /) -> SyncTaskHandle[P, R]: ...


@overload
def task(  # type: ignore[overload-overlap]  # an async def matches both; this one is meant
    function: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]], /
) -> AsyncTaskHandle[P, R]: ...


@overload
def task(function: Callable[Concatenate[Any, P], R], /) -> SyncTaskHandle[P, R]: ...


@overload
def task(**settings: Unpack[TaskSettings]) -> TaskDecorator: ...


def task(function: Callable[..., Any] | None = None, /, **settings: Unpack[TaskSettings]) -> Any:
    """Make ``function`` (``async def`` or ``def``, ``ctx`` first) a task handle; see the module.

    Args:
        function: the task, when used as ``@task`` without arguments.
        **settings: ``name``, ``queue``, the job options ``timeout``, ``retries``, ``ttl``,
            ``heartbeat``, ``retry_delay``, ``retry_backoff``, and ``dependencies``: see ``TaskSettings``.
    """
    unknown = sorted(set(settings) - set(TaskSettings.__annotations__))
    if unknown:
        raise TaskDefinitionError(
            f"@task got unknown setting(s) {', '.join(unknown)}; "
            f"it takes {', '.join(TaskSettings.__annotations__)}"
        )
    defaults: Any = {
        option: value
        for option, value in settings.items()
        if option not in ("name", "queue", "dependencies") and value is not None
    }

    def decorate(function: Callable[..., Any]) -> TaskHandle[Any, Any]:
        handle_class = SyncTaskHandle if not is_async_callable(function) else AsyncTaskHandle
        return handle_class(
            function,
            name=settings.get("name"),
            queue=settings.get("queue"),
            defaults=defaults,
            dependencies=settings.get("dependencies"),
        )

    if function is not None:
        return decorate(function)
    return decorate
