"""Children that cannot start or crash: one clear line, restarts with backoff, no busy supervisor."""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import Callable

import pytest

from litestar_saq.supervisor import RestartBackoff
from tests.support.poll import wait_until
from tests.support.procs import CliProcess, cpu_seconds, is_alive

StartCli = Callable[..., CliProcess]


@pytest.mark.parametrize(
    ("failure_env", "expected_line"),
    [
        pytest.param(
            {"TEST_DSN": "redis://127.0.0.1:1/0"},
            r"worker process (\d+) for queue\(s\) {queue} cannot start: the app's startup failed: "
            r"queue '{queue}': cannot reach Redis at 127\.0\.0\.1:1/0: ConnectionError: .*",
            id="broker-down",
        ),
        pytest.param(
            {"TEST_FAIL_IN_CHILD": "import"},
            r"worker process (\d+) for queue\(s\) {queue} cannot start: cannot import app module "
            r"'tests\.workers\.apps\.workers_app': RuntimeError: this app refuses to import in a worker.*",
            id="import-error",
        ),
        pytest.param(
            {"TEST_FAIL_IN_CHILD": "startup"},
            r"queue '{queue}': worker failed in process (\d+), stopping this process",
            id="worker-exception",
        ),
    ],
)
async def test_failing_child_is_reported_and_restarted_with_backoff_without_spinning(
    cli: StartCli, app_env: dict[str, str], queue_name: str, failure_env: dict[str, str], expected_line: str
) -> None:
    process = cli(["workers", "run", "--process"], {**app_env, **failure_env})
    pattern = re.compile(expected_line.format(queue=re.escape(queue_name)))
    match = await wait_until(lambda: pattern.search(process.log()), timeout=20, what="the child's error line")
    failed_pid = match.group(1)
    exit_code = (
        "3" if failure_env.get("TEST_DSN") or failure_env.get("TEST_FAIL_IN_CHILD") == "import" else "1"
    )
    await wait_until(
        lambda: (
            f"queue '{queue_name}': worker process {failed_pid} exited with code {exit_code}" in process.log()
        ),
        timeout=10,
        what="the supervisor's line naming queue, pid and exit code",
    )
    # Backoff: 1 s after the first failure, 2 s after the second.
    await wait_until(lambda: "restarting it in 2 s" in process.log(), timeout=20, what="the second restart")
    assert "restarting it in 1 s" in process.log()

    # While it waits to restart, the supervisor sleeps: measure its CPU time over 1.5 s.
    before = cpu_seconds(process.pid)
    await asyncio.sleep(1.5)  # a measurement window, not a synchronisation
    assert cpu_seconds(process.pid) - before < 0.2

    children = process.worker_pids()
    process.send(signal.SIGTERM)
    assert await process.wait_exit(timeout=15) == 0, process.log()
    assert not [pid for pid in children if is_alive(pid)]


def test_restart_backoff_doubles_to_30_s_and_resets_after_a_stable_run() -> None:
    backoff = RestartBackoff(stable_after_s=60)
    delays = [backoff.delay_after_exit(ran_for_s=0.5) for _ in range(7)]
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.delay_after_exit(ran_for_s=61) == 1
    assert backoff.delay_after_exit(ran_for_s=0.5) == 2
