"""Fixtures of the worker-process tests: environments for the test apps (``apps/``) and CLI processes
that are always cleaned up. (``redis_queue``, the test's queue, is in ``tests/conftest.py``.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.procs import CliProcess, app_env_for_test, cli_processes

WORKERS_APP = "tests.workers.apps.workers_app:app"


@pytest.fixture
def app_env(queue_name: str, redis_url: str) -> dict[str, str]:
    """Environment for ``tests.workers.apps.workers_app`` with this test's queue."""
    return app_env_for_test(queue_name, redis_url)


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Callable[..., CliProcess]]:
    """Start CLI processes; any still running (with their children) are killed when the test ends."""
    yield from cli_processes(tmp_path, WORKERS_APP)
