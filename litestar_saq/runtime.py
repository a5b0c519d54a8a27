"""What this process knows of an app's SAQ setup: its config, its queues, and whether it is a worker child.

A small leaf module: the CLI, the supervisor, the dashboard, the testing helpers and the worker child
find an app's queues here (``runtime_of(app)``) instead of importing the plugin, so imports point one
way (plugin → cli, web, supervisor), never back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from litestar_saq.exceptions import SAQConfigError

if TYPE_CHECKING:
    from litestar import Litestar

    from litestar_saq.config import QueueConfig, SAQConfig
    from litestar_saq.queues import TaskQueueRegistry

__all__ = (
    "CHILD_PROCESS_ENV",
    "SAQRuntime",
    "StartedRuntimes",
    "is_worker_child",
    "mark_as_worker_child",
    "runtime_of",
    "started_runtimes",
)

CHILD_PROCESS_ENV = "LITESTAR_SAQ_WORKER_CHILD"
"""Set in worker child processes, so the app they load does not start in-process workers again."""


def is_worker_child() -> bool:
    """Whether this process is a worker child (``workers run`` or the server lifespan started it)."""
    return bool(os.environ.get(CHILD_PROCESS_ENV))


def mark_as_worker_child() -> None:
    """Mark this process as a worker child; do it before the app is imported."""
    os.environ[CHILD_PROCESS_ENV] = "1"


@dataclass(frozen=True, eq=False)
class SAQRuntime:
    """An app's SAQ configuration and the queues this process connected for it."""

    config: SAQConfig
    """The plugin's configuration."""
    task_queues: TaskQueueRegistry
    """The queues of this process, connected while the app runs."""
    queues_of_task: dict[Any, tuple[str, ...]] = field(default_factory=dict)
    """For each task function or handle: the queues that list it in ``tasks`` (set when the app starts)."""

    def index_tasks(self) -> None:
        """Record which queues list which task (``queues_of_task``); dotted paths are imported."""
        self.queues_of_task.clear()
        for queue_config in self.config.queue_configs:
            for function in queue_config.resolve_tasks().values():
                self.queues_of_task[function] = (*self.queues_of_task.get(function, ()), queue_config.name)

    def queues_to_run_here(self) -> list[QueueConfig]:
        """The queues whose workers run inside the app process (none in a worker child)."""
        if is_worker_child():
            return []
        return [
            queue_config for queue_config in self.config.queue_configs if not queue_config.separate_process
        ]


def runtime_of(app: Litestar) -> SAQRuntime:
    """Return the ``SAQRuntime`` of ``app``'s ``SAQPlugin``.

    Raises:
        SAQConfigError: the app has no ``SAQPlugin``.
    """
    for plugin in app.plugins:
        runtime = getattr(plugin, "runtime", None)
        if isinstance(runtime, SAQRuntime):
            return runtime
    raise SAQConfigError(
        "the app has no SAQPlugin; add plugins=[SAQPlugin(SAQConfig(queue_configs=[QueueConfig(...)]))] "
        "to Litestar(...)"
    )


class StartedRuntimes:
    """The runtimes whose app has started in this process, newest last: task handles enqueue through them.

    The plugin adds its runtime when its app's lifespan starts and removes it when it ends.
    ``generation`` changes with every start and stop, so a handle can cache the queue it found.
    """

    def __init__(self) -> None:
        self._runtimes: list[SAQRuntime] = []
        self.generation = 0

    def add(self, runtime: SAQRuntime) -> None:
        """Record that ``runtime``'s app started."""
        self._runtimes.append(runtime)
        self.generation += 1

    def remove(self, runtime: SAQRuntime) -> None:
        """Record that ``runtime``'s app stopped."""
        if runtime in self._runtimes:
            self._runtimes.remove(runtime)
        self.generation += 1

    def newest(self) -> SAQRuntime | None:
        """The runtime of the app started last that is still running, or ``None``."""
        return self._runtimes[-1] if self._runtimes else None


started_runtimes = StartedRuntimes()
"""The one registry of started runtimes of this process (see ``StartedRuntimes``)."""
