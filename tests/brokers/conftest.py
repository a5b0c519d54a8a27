"""Fixtures of the queue tests: ``contract_queue`` is a connected queue of every backend in turn."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from saq.queue import Queue

from tests.support.brokers import QUEUE_FACTORIES, backend_queue


@pytest.fixture(params=sorted(QUEUE_FACTORIES))
def contract_backend(request: pytest.FixtureRequest) -> str:
    """The name of each backend in ``QUEUE_FACTORIES`` in turn."""
    backend: str = request.param
    return backend


@pytest.fixture
async def contract_queue(contract_backend: str, queue_name: str) -> AsyncIterator[Queue]:
    """A connected queue of each backend in ``QUEUE_FACTORIES``, disconnected and purged afterwards."""
    async with backend_queue(contract_backend, queue_name) as queue:
        yield queue
