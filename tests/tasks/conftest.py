"""Fixtures of the task tests: an app with one in-process queue on memory, Redis or PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from litestar import Litestar

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin
from litestar_saq.backends.memory import MemoryQueue
from tests.support.brokers import DATABASE_URL, QUEUE_PURGES, REDIS_URL

BACKENDS = ("memory", "redis", "asyncpg")
DSNS = {"memory": "memory://", "redis": REDIS_URL, "asyncpg": DATABASE_URL}

MakeApp = Callable[..., Litestar]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_app(backend: str, queue_name: str) -> AsyncIterator[MakeApp]:
    """Build an app with one in-process queue named ``queue_name`` on ``backend``; purged afterwards.

    Keyword arguments go to ``QueueConfig`` (``queue_dependencies`` as its ``dependencies``), except
    ``dependencies`` (``SAQConfig``'s), ``route_handlers`` and ``on_startup`` (``Litestar``'s).
    """
    queues: list[str] = []

    def make(
        *,
        dependencies: Any = None,
        queue_dependencies: Any = None,
        route_handlers: Any = (),
        on_startup: Any = (),
        **queue_options: Any,
    ) -> Litestar:
        queue_options.setdefault("name", queue_name)
        queue_options.setdefault("dsn", DSNS[backend])
        queue_options.setdefault("separate_process", False)
        queue_options.setdefault("job_defaults", {"timeout": 30})
        queue_options["dependencies"] = queue_dependencies
        queues.append(queue_options["name"])
        config = SAQConfig(queue_configs=[QueueConfig(**queue_options)], dependencies=dependencies)
        return Litestar(list(route_handlers), plugins=[SAQPlugin(config)], on_startup=list(on_startup))

    yield make
    purge = QUEUE_PURGES.get(backend)
    if purge is not None:
        for name in queues:
            await purge(MemoryQueue(name=name))  # the purges need only the queue's name
