"""Fixtures for the example's tests.

By default the app, configured for Redis as in production, runs on ``memory://`` thanks to the
``saq_in_memory`` fixture of ``litestar_saq.testing``: the tests need no broker. Set
``EXAMPLE_TEST_DSN=redis://…`` to run the same tests against a real broker instead.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from litestar import Litestar

from examples.fullstack.app import create_app
from litestar_saq.testing import running_app, saq_in_memory  # noqa: F401  (saq_in_memory is a fixture)

PRODUCTION_DSN = "redis://127.0.0.1:6379/0"


@pytest.fixture
def app(saq_in_memory: Callable[[Litestar], None]) -> Litestar:  # noqa: F811
    real_broker = os.environ.get("EXAMPLE_TEST_DSN")
    app = create_app(real_broker or PRODUCTION_DSN)
    if not real_broker:
        saq_in_memory(app)
    return app


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(app) as client:
        yield client
