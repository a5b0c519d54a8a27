"""Fixtures of the operations tests: the test app's environment and CLI processes always cleaned up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.procs import CliProcess, app_env_for_test, cli_processes

OPS_APP = "tests.operations.apps.ops_app:app"


@pytest.fixture
def ops_env(queue_name: str, redis_url: str) -> dict[str, str]:
    """Environment for ``tests.operations.apps.ops_app`` with this test's queue on Redis."""
    return app_env_for_test(queue_name, redis_url)


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Callable[..., CliProcess]]:
    """Start CLI processes of the ops app; any still running (with their children) are killed at the end."""
    yield from cli_processes(tmp_path, OPS_APP)
