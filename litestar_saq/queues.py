"""The app's queues by name, for handlers: ``task_queues: TaskQueues``."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency

from litestar_saq.exceptions import QueueNotFoundError

if TYPE_CHECKING:
    from saq.queue import Queue

__all__ = ("TaskQueueRegistry", "TaskQueues")

logger = logging.getLogger("litestar_saq")


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

    def after_response(self, queue_name: str, function: str, **kwargs: Any) -> BackgroundTask:
        """A ``BackgroundTask`` for ``Response(..., background=...)``: enqueue once the response is sent.

        ``kwargs`` are ``queue.enqueue``'s (job arguments and options). An enqueue that fails then is
        logged with the queue, the task and the cause; the response, already sent, is not affected.
        """
        return BackgroundTask(self._enqueue_after_response, queue_name, function, kwargs)

    async def _enqueue_after_response(self, queue_name: str, function: str, kwargs: dict[str, Any]) -> None:
        try:
            await self.get(queue_name).enqueue(function, **kwargs)
        except Exception as exc:
            logger.exception(
                "queue %r: enqueuing task %r after the response failed: %s: %s",
                queue_name,
                function,
                type(exc).__name__,
                exc,
            )

    def __getitem__(self, name: str) -> Queue:
        return self.get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._queues)

    def __len__(self) -> int:
        return len(self._queues)

    @property
    def queues(self) -> Mapping[str, Queue]:
        """Upstream's ``task_queues.queues``: a read-only view of the queues by name."""
        return MappingProxyType(self._queues)

    def __repr__(self) -> str:
        return f"TaskQueues({list(self._queues)})"

    def _replace(self, queues: Mapping[str, Queue]) -> None:
        """Swap the registry's contents in place, so references held elsewhere stay valid."""
        self._queues = dict(queues)


TaskQueues = NamedDependency[TaskQueueRegistry]
"""Annotation for handlers: ``async def handler(task_queues: TaskQueues)``."""
