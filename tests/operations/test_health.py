"""``litestar workers health``: exit 0 while every queue has a live worker with a fresh heartbeat, else 1
with one line per problem — checked against real worker processes that are stopped with signals."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest

from tests.operations.conftest import OPS_APP
from tests.support.brokers import DATABASE_URL
from tests.support.poll import wait_until
from tests.support.procs import CliProcess, run_cli


def health(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = run_cli(OPS_APP, ["workers", "health", *args], env)
    return result.returncode, result.stdout, result.stderr


@pytest.mark.parametrize("dsn", ["redis", "postgres"])
async def test_health_follows_the_worker_process(
    dsn: str, ops_env: dict[str, str], cli: Callable[..., CliProcess], queue_name: str
) -> None:
    if dsn == "postgres":
        ops_env["TEST_DSN"] = DATABASE_URL
    code, _, err = health(ops_env)
    assert code == 1 and err.startswith(f"queue {queue_name!r}: no live worker (broker ")

    supervisor = cli(["workers", "run", "--process"], ops_env)
    await wait_until(lambda: health(ops_env)[0] == 0, timeout=30, what="workers health to pass")
    code, out, _ = health(ops_env, "--json")
    assert code == 0 and '"healthy": true' in out

    # A frozen worker process stops its heartbeats: the probe fails within a few seconds.
    (child,) = await wait_until(supervisor.worker_pids, what="the worker process")
    supervisor_pid = supervisor.pid
    os.kill(child, signal.SIGSTOP)
    try:
        await wait_until(
            lambda: health(ops_env, "--max-heartbeat-age", "2")[0] == 1, timeout=15, what="health to fail"
        )
        code, _, err = health(ops_env, "--max-heartbeat-age", "2")
        assert code == 1 and queue_name in err and len(err.strip().splitlines()) == 1
    finally:
        os.kill(child, signal.SIGCONT)
    await wait_until(lambda: health(ops_env)[0] == 0, timeout=30, what="health to pass again")

    os.kill(supervisor_pid, signal.SIGTERM)
    assert await supervisor.wait_exit(timeout=30) == 0
    # The stopped worker's last heartbeat expires one second after its interval (timers["worker_info"]).
    await wait_until(lambda: "no live worker" in health(ops_env)[2], timeout=10, what="health to fail")


def test_health_names_an_unreachable_broker_and_an_unknown_queue(ops_env: dict[str, str]) -> None:
    ops_env["TEST_DSN"] = "redis://:secret@127.0.0.1:1/0"
    code, _, err = health(ops_env)
    assert code == 1 and "secret" not in err and len(err.strip().splitlines()) == 1
    code, _, err = health(ops_env, "--queues", "nope")
    assert code == 2 and "nope" in err
