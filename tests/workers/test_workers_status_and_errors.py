"""``litestar workers status`` and the commands' errors for apps they cannot serve."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from saq.job import Status

from litestar_saq.backends.redis import RedisQueue
from tests.support.poll import until_finished, wait_until
from tests.support.procs import ROOT, CliProcess, run_cli
from tests.workers.conftest import WORKERS_APP

StartCli = Callable[..., CliProcess]


async def test_status_shows_counts_totals_and_live_workers(
    cli: StartCli, app_env: dict[str, str], redis_queue: RedisQueue
) -> None:
    process = cli(["workers", "run", "--process", "--workers", "2"], app_env)
    children = await wait_until(
        lambda: len(process.worker_pids()) == 2 and process.worker_pids(),
        timeout=20,
        what="two worker processes",
    )
    jobs = [await redis_queue.enqueue("noop") for _ in range(5)]
    for job in jobs:
        assert job is not None
        await until_finished(job, timeout=20)
        assert job.status == Status.COMPLETE
    await redis_queue.enqueue("noop", scheduled=4_000_000_000)  # far in the future: counted as scheduled

    def status_when_complete() -> dict[str, Any] | None:
        result = run_cli(WORKERS_APP, ["workers", "status", "--json"], app_env)
        assert result.returncode == 0, result.stderr
        [queue] = json.loads(result.stdout)["queues"]
        return queue if len(queue["workers"]) == 2 and queue["complete"] == 5 else None

    queue = await wait_until(status_when_complete, timeout=20, what="both workers to report 5 complete jobs")
    assert queue["name"] == redis_queue.name
    assert queue["broker"] == app_env["REDIS_URL"]
    assert (queue["queued"], queue["active"], queue["scheduled"]) == (0, 0, 1)
    assert (queue["failed"], queue["retried"]) == (0, 0)
    assert sorted(worker["pid"] for worker in queue["workers"]) == children
    assert all(worker["host"] and worker["uptime_s"] >= 0 and worker["id"] for worker in queue["workers"])

    text = run_cli(WORKERS_APP, ["workers", "status"], app_env)
    assert text.returncode == 0
    assert f"queue '{redis_queue.name}'" in text.stdout
    assert "complete 5" in text.stdout
    assert all(f"pid {pid}" in text.stdout for pid in children)

    process.send(signal.SIGTERM)
    assert await process.wait_exit(timeout=15) == 0


def test_status_with_an_unreachable_broker_names_queue_and_host_and_masks_the_password(
    app_env: dict[str, str], queue_name: str
) -> None:
    env = {**app_env, "TEST_DSN": "redis://user:s3cret@127.0.0.1:1/0"}
    result = run_cli(WORKERS_APP, ["workers", "status"], env)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: queue '{queue_name}': cannot reach Redis at 127.0.0.1:1/0: ")
    assert "s3cret" not in result.stdout + result.stderr

    as_json = run_cli(WORKERS_APP, ["workers", "status", "--json"], env)
    assert as_json.returncode == 1
    document = json.loads(as_json.stdout)
    assert document["queues"] == []
    assert "127.0.0.1:1" in document["errors"][0]


def test_in_process_run_with_an_unreachable_broker_fails_with_one_line(
    app_env: dict[str, str], queue_name: str
) -> None:
    result = run_cli(WORKERS_APP, ["workers", "run"], {**app_env, "TEST_DSN": "redis://127.0.0.1:1/0"})
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"Error: cannot start the workers: the app's startup failed: queue '{queue_name}': "
            "cannot reach Redis at 127.0.0.1:1/0"
        )
    )


def test_unknown_queue_exits_2_naming_it_and_the_known_queues(
    app_env: dict[str, str], queue_name: str
) -> None:
    for extra in ([], ["--process"]):
        result = run_cli(WORKERS_APP, ["workers", "run", *extra, "--queues", f"{queue_name},nope"], app_env)
        assert result.returncode == 2
        assert f"unknown queue(s) 'nope'; configured queues: '{queue_name}'" in result.stderr


def test_workers_option_needs_process(app_env: dict[str, str]) -> None:
    result = run_cli(WORKERS_APP, ["workers", "run", "--workers", "2"], app_env)
    assert result.returncode == 2
    assert "--workers needs --process" in result.stderr


def test_process_mode_refuses_memory_queues(app_env: dict[str, str]) -> None:
    result = run_cli("tests.workers.apps.memory_app:app", ["workers", "run", "--process"], app_env)
    assert result.returncode == 2
    assert "queue(s) 'in-memory' keep their jobs in memory (memory://)" in result.stderr
    assert "without --process" in result.stderr


def test_app_without_queues_gets_a_clear_error(app_env: dict[str, str]) -> None:
    for command in (["workers", "run"], ["workers", "run", "--process"], ["workers", "status"]):
        result = run_cli("tests.workers.apps.no_queues:app", command, app_env)
        assert result.returncode == 1
        assert "has no queues; add QueueConfig(name=..., dsn=...) to SAQConfig.queue_configs" in result.stderr


def test_app_without_the_plugin_gets_a_clear_error(app_env: dict[str, str]) -> None:
    # The Litestar CLI only knows the 'workers' group when the app has the plugin.
    result = run_cli("tests.workers.apps.no_plugin:app", ["workers", "status"], app_env)
    assert result.returncode == 2
    assert "No such command 'workers'" in result.stderr
    # Without the Litestar CLI the commands run and say what is missing.
    for command in (["workers", "run"], ["workers", "status"]):
        standalone = subprocess.run(
            [
                sys.executable,
                "-c",
                "from litestar_saq.cli import main; main()",
                "--app",
                "tests.workers.apps.no_plugin:app",
                *command,
            ],
            cwd=ROOT,
            env=app_env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert standalone.returncode == 1
        assert "the app tests.workers.apps.no_plugin:app has no SAQPlugin" in standalone.stderr
