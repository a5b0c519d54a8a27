"""Dependency injection in tasks: which parameters a task gets injected and how its providers are called.

A task parameter whose name is a dependency (``SAQConfig``, ``QueueConfig`` or ``@task``
``dependencies``, inner wins) is injected per job; so is one declared ``= injected()`` (our
``= injected()``, which also keeps it optional for mypy at enqueue time). The other keyword parameters are the
job's kwargs. Providers are ``Provide(...)`` or plain callables, sync or async, generators included,
and may ask for ``ctx``, ``job``, ``queue``, ``app``, ``state``, ``worker`` or other dependencies by name.

``plan_task`` works all that out once, when a worker is built (and when the app starts, so a missing
provider fails then); ``TaskPlan.run`` only calls the providers of one job in the planned order and
finalises generator providers after the job, whatever its outcome, throwing the job's exception into them.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from litestar.di import Provide
from litestar.params import DependencyKwarg
from litestar.types import Empty
from litestar.utils.predicates import is_async_callable

from litestar_saq.exceptions import SAQConfigError, TaskDefinitionError
from litestar_saq.sync_tasks import run_in_worker_thread

__all__ = ("CONTEXT_NAMES", "InjectedMarker", "TaskPlan", "injected", "merge_dependencies", "plan_task")

logger = logging.getLogger("litestar_saq")

CONTEXT_NAMES = frozenset({"ctx", "job", "queue", "app", "state", "worker"})
"""What a provider may ask for besides other dependencies: the job's ``ctx`` and its entries."""


@dataclass(frozen=True)
class InjectedMarker:
    """The default of a task parameter declared ``= injected()``."""

    default: Any = Empty


def injected(*, default: Any = Empty) -> Any:
    """Mark a task parameter as injected: ``mailer: Mailer = injected()``.

    Callers (and mypy) then need not pass it at enqueue time; the worker fills it from the provider of
    that name. Without a provider the app fails to start, unless ``default`` is given, which is then
    injected. (Litestar's deprecated ``Dependency()`` is understood the same way.)
    """
    return InjectedMarker(default)


class ProviderKind(enum.Enum):
    SYNC = "sync"
    THREAD = "sync, in a thread"
    ASYNC = "async"
    GENERATOR = "generator"
    ASYNC_GENERATOR = "async generator"


@dataclass(frozen=True)
class ProviderStep:
    """One provider call of a job: ``values[name] = call(**{p: values[p] for p in params})``."""

    name: str
    call: Callable[..., Any]
    params: tuple[str, ...]
    kind: ProviderKind


@dataclass(frozen=True)
class TaskPlan:
    """How to run one task: the providers to call, in order, and the parameters they fill."""

    name: str
    function: Callable[..., Any]
    steps: tuple[ProviderStep, ...]
    """Providers in call order (a provider after those it asks for)."""
    injected: tuple[str, ...]
    """Task parameters filled from ``steps``."""
    constants: Mapping[str, Any]
    """Task parameters declared ``= injected(default=...)`` that nobody provides."""
    context_names: tuple[str, ...]
    """The ``CONTEXT_NAMES`` that the providers ask for."""
    is_sync: bool
    """The task is a plain ``def``: it runs in the worker's thread pool."""

    @property
    def injected_names(self) -> frozenset[str]:
        """Every parameter the worker fills; a job's kwargs must not name one."""
        return frozenset(self.injected) | frozenset(self.constants)

    @property
    def is_plain(self) -> bool:
        """Nothing to inject and nothing to run in a thread: the function can be called as it is."""
        return not (self.steps or self.constants or self.is_sync)

    async def run(self, ctx: Any, kwargs: dict[str, Any]) -> Any:
        """Run the task for one job: call its providers, then the task, then finalise generators."""
        clashes = self.injected_names.intersection(kwargs)
        if clashes:
            raise TaskDefinitionError(
                f"task {self.name!r}: the job passes {', '.join(sorted(clashes))}, which the worker injects; "
                "enqueue without it"
            )
        values: dict[str, Any] = {
            name: ctx if name == "ctx" else ctx.get(name) for name in self.context_names
        }
        open_generators: list[Any] = []
        try:
            for step in self.steps:
                values[step.name] = await _provide(step, values, open_generators)
            arguments = {**kwargs, **self.constants}
            for name in self.injected:
                arguments[name] = values[name]
            if self.is_sync:
                result = await run_in_worker_thread(ctx, self.function, arguments)
            else:
                result = await self.function(ctx, **arguments)
        except BaseException as exc:
            await _finalise(open_generators, exc, self.name)
            raise
        await _finalise(open_generators, None, self.name)
        return result


async def _provide(step: ProviderStep, values: dict[str, Any], open_generators: list[Any]) -> Any:
    arguments = {param: values[param] for param in step.params}
    kind = step.kind
    if kind is ProviderKind.ASYNC:
        return await step.call(**arguments)
    if kind is ProviderKind.SYNC:
        return step.call(**arguments)
    if kind is ProviderKind.THREAD:
        return await asyncio.to_thread(step.call, **arguments)
    generator = step.call(**arguments)
    if kind is ProviderKind.ASYNC_GENERATOR:
        value = await generator.__anext__()
    else:
        value = next(generator)
    open_generators.append(generator)
    return value


async def _finalise(open_generators: list[Any], error: BaseException | None, task_name: str) -> None:
    """Close generator providers, newest first; they see ``error`` (the job's exception) if there is one.

    After a successful job, a provider that fails its cleanup (a failed commit) fails the job. After a
    failed one, cleanup errors are logged and the job's own exception is what the job records.
    """
    while open_generators:
        generator = open_generators.pop()
        try:
            await _close(generator, error)
        except BaseException as cleanup_error:
            if error is None:
                error = cleanup_error
                await _finalise(open_generators, error, task_name)
                raise
            if cleanup_error is not error:
                logger.exception("task %r: a dependency's cleanup failed after the job failed", task_name)


async def _close(generator: Any, error: BaseException | None) -> None:
    is_async = inspect.isasyncgen(generator)
    try:
        if error is None:
            if is_async:
                await generator.__anext__()
            else:
                next(generator)
        elif is_async:
            await generator.athrow(error)
        else:
            generator.throw(error)
    except (StopIteration, StopAsyncIteration):
        return
    raise TaskDefinitionError(
        "a generator dependency yielded more than once; it must yield exactly one value"
    )


# --- planning (when a worker is built) ---------------------------------------------------------------


def merge_dependencies(*levels: Mapping[str, Any] | None) -> dict[str, Any]:
    """The dependencies of a task from outer to inner level (app, queue, task): inner ones win."""
    merged: dict[str, Any] = {}
    for level in levels:
        merged.update(level or {})
    return merged


def plan_task(
    name: str, function: Callable[..., Any], dependencies: Mapping[str, Any], *, where: str
) -> TaskPlan:
    """Work out how to run task ``function`` with ``dependencies``.

    Args:
        name: the task's name, for errors.
        function: the task function itself (not a handle).
        dependencies: the merged providers (``merge_dependencies``).
        where: who asks, for errors (``"queue 'default'"``).

    Raises:
        SAQConfigError: a parameter declared ``injected()`` or a provider's parameter has no provider,
            or providers ask for each other in a cycle.
    """
    injected: list[str] = []
    constants: dict[str, Any] = {}
    for parameter in list(_signature(function, f"{where}: task {name!r}").parameters.values())[1:]:
        if parameter.kind not in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            continue
        if parameter.name in dependencies:
            injected.append(parameter.name)
        elif isinstance(parameter.default, (InjectedMarker, DependencyKwarg)):
            if parameter.default.default is Empty:
                raise SAQConfigError(
                    f"{where}: task {name!r} asks for dependency {parameter.name!r} (= injected()), which "
                    "no provider gives; add it to dependencies= of SAQConfig, QueueConfig or @task"
                )
            constants[parameter.name] = parameter.default.default
    steps: dict[str, ProviderStep] = {}
    context_names: set[str] = set()
    for dependency in injected:
        _plan_provider(dependency, dependencies, steps, context_names, (), f"{where}: task {name!r}")
    return TaskPlan(
        name=name,
        function=function,
        steps=tuple(steps.values()),
        injected=tuple(injected),
        constants=constants,
        context_names=tuple(sorted(context_names)),
        is_sync=not is_async_callable(function),
    )


def _plan_provider(
    name: str,
    dependencies: Mapping[str, Any],
    steps: dict[str, ProviderStep],
    context_names: set[str],
    asking: tuple[str, ...],
    where: str,
) -> None:
    if name in steps:
        return
    if name in asking:
        raise SAQConfigError(
            f"{where}: dependencies ask for each other in a cycle: {' -> '.join((*asking, name))}"
        )
    provider = dependencies[name]
    call, to_thread = (
        (provider.dependency, provider.sync_to_thread) if isinstance(provider, Provide) else (provider, False)
    )
    if not callable(call):
        raise SAQConfigError(
            f"{where}: dependency {name!r} is {call!r}; give a callable or Provide(callable)"
        )
    params: list[str] = []
    for parameter in _signature(call, f"{where}: dependency {name!r}").parameters.values():
        if parameter.name in dependencies and parameter.name != name:
            _plan_provider(parameter.name, dependencies, steps, context_names, (*asking, name), where)
        elif parameter.name in CONTEXT_NAMES:
            context_names.add(parameter.name)
        elif parameter.default is not parameter.empty or parameter.kind in (
            parameter.VAR_KEYWORD,
            parameter.VAR_POSITIONAL,
        ):
            continue
        else:
            raise SAQConfigError(
                f"{where}: dependency {name!r} asks for {parameter.name!r}, which is neither a dependency "
                f"nor one of {', '.join(sorted(CONTEXT_NAMES))}"
            )
        params.append(parameter.name)
    steps[name] = ProviderStep(name=name, call=call, params=tuple(params), kind=_kind_of(call, to_thread))


def _kind_of(call: Callable[..., Any], to_thread: bool) -> ProviderKind:
    if inspect.isasyncgenfunction(call):
        return ProviderKind.ASYNC_GENERATOR
    if inspect.isgeneratorfunction(call):
        return ProviderKind.GENERATOR
    if is_async_callable(call):
        return ProviderKind.ASYNC
    return ProviderKind.THREAD if to_thread else ProviderKind.SYNC


def _signature(call: Callable[..., Any], what: str) -> inspect.Signature:
    try:
        return inspect.signature(call)
    except (TypeError, ValueError) as exc:
        raise SAQConfigError(f"{what}: cannot read the signature of {call!r}: {exc}") from exc
