"""Fixtures of the operations tests: the test app's environment and CLI processes always cleaned up."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.procs import CliProcess, kill_session, start_cli

OPS_APP = "tests.operations.apps.ops_app:app"


@pytest.fixture
def ops_env(queue_name: str, redis_url: str) -> dict[str, str]:
    """Environment for ``tests.operations.apps.ops_app`` with this test's queue on Redis."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TEST_", "LITESTAR_"))}
    env.update(
        TEST_QUEUE=queue_name,
        REDIS_URL=redis_url,
        PYTHONUNBUFFERED="1",
        PYTHONFAULTHANDLER="1",
        LITESTAR_QUIET_CONSOLE="1",
    )
    return env


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Callable[..., CliProcess]]:
    """Start CLI processes of the ops app; any still running (with their children) are killed at the end."""
    started: list[CliProcess] = []

    def start(args: list[str], env: dict[str, str], app: str = OPS_APP) -> CliProcess:
        process = start_cli(app, args, env, tmp_path / f"cli-{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        kill_session(process)
