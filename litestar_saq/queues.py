"""The app's queues by name, for handlers: ``task_queues: TaskQueues``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from litestar.di import NamedDependency

from litestar_saq.exceptions import QueueNotFoundError

if TYPE_CHECKING:
    from saq.queue import Queue

__all__ = ("TaskQueueRegistry", "TaskQueues")


class TaskQueueRegistry(Mapping[str, "Queue"]):
    """The app's queues by name, injected into handlers as ``task_queues: TaskQueues``.

    The queues are connected once when the app starts and closed when it stops; every request gets
    the same registry.
    """

    def __init__(self, queues: Mapping[str, Queue] | None = None) -> None:
        self._queues: dict[str, Queue] = dict(queues or {})

    def get(self, name: str, default: Any = None) -> Queue:
        """Return the queue called ``name``; raise ``QueueNotFoundError`` naming the known queues."""
        queue: Queue | None = self._queues.get(name, default)
        if queue is None:
            known = ", ".join(repr(known) for known in self._queues) or "none (has the app started?)"
            raise QueueNotFoundError(f"no queue named {name!r}; known queues: {known}")
        return queue

    def __getitem__(self, name: str) -> Queue:
        return self.get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._queues)

    def __len__(self) -> int:
        return len(self._queues)

    def __repr__(self) -> str:
        return f"TaskQueues({list(self._queues)})"

    def _replace(self, queues: Mapping[str, Queue]) -> None:
        """Swap the registry's contents in place, so references held elsewhere stay valid."""
        self._queues = dict(queues)


TaskQueues = NamedDependency[TaskQueueRegistry]
"""Annotation for handlers: ``async def handler(task_queues: TaskQueues)``."""
