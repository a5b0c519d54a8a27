"""Fixtures shared by every test: broker addresses and per-test names.

Tests talk to real brokers. ``REDIS_URL`` and ``DATABASE_URL`` choose them; the defaults are the
servers that CI and the development machine run on 127.0.0.1. Each test gets its own queue names
(and, for PostgreSQL, its own schema) so tests can run in parallel.
"""

from __future__ import annotations

import os
import uuid

import pytest

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
def database_url() -> str:
    return DATABASE_URL


@pytest.fixture
def queue_name(request: pytest.FixtureRequest) -> str:
    """A queue name no other test uses, readable in broker dumps."""
    test_name = request.node.name.split("[")[0][:30]
    return f"t-{test_name}-{uuid.uuid4().hex[:8]}"
