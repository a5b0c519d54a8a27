"""Fixtures for the port of SAQ's own PostgresQueue tests to ``AsyncpgQueue``.

Each test gets its own schema and queue name (``asyncpg_queues`` in ``tests/conftest.py``), so the
suite runs in parallel; ``create_queue`` makes more queues with the same name, as SAQ's helpers do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from saq import Worker

from litestar_saq.backends.asyncpg import AsyncpgQueue
from tests.brokers.saq_suite.functions import FUNCTIONS

CreateQueue = Callable[..., Awaitable[AsyncpgQueue]]


@pytest.fixture
def create_queue(asyncpg_queues: CreateQueue) -> CreateQueue:
    """Make another connected queue in this test's schema, by default with the test's queue name."""
    return asyncpg_queues


@pytest.fixture
async def queue(create_queue: CreateQueue) -> AsyncpgQueue:
    return await create_queue()


@pytest.fixture
async def make_worker(queue: AsyncpgQueue) -> AsyncIterator[Callable[..., Worker]]:
    """Build SAQ workers on ``queue``; every one is stopped after the test."""
    workers: list[Worker] = []

    def make(functions: Any = None, **options: Any) -> Worker:
        worker = Worker(queue, functions=FUNCTIONS if functions is None else functions, **options)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        await worker.stop()
