"""The ops commands of ``litestar workers``: enqueue, job, abort, retry-failed, purge — on Redis and
PostgreSQL, against a real worker process where a job must run."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from saq.job import Status

from tests.operations.conftest import OPS_APP
from tests.support.brokers import DATABASE_URL, backend_queue
from tests.support.poll import wait_until
from tests.support.procs import CliProcess, run_cli

BACKENDS = {"redis": None, "asyncpg": DATABASE_URL}


def workers(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = run_cli(OPS_APP, ["workers", *args], env)
    return result.returncode, result.stdout, result.stderr


@pytest.fixture(params=list(BACKENDS))
def backend(request: pytest.FixtureRequest, ops_env: dict[str, str]) -> str:
    dsn = BACKENDS[request.param]
    if dsn:
        ops_env["TEST_DSN"] = dsn
    return str(request.param)


async def test_enqueue_show_and_abort_a_running_job_in_a_worker_process(
    backend: str, ops_env: dict[str, str], cli: Callable[..., CliProcess], queue_name: str
) -> None:
    supervisor = cli(["workers", "run", "--process"], ops_env)
    code, out, err = workers(
        ops_env,
        "enqueue",
        "sleep_for",
        "--queue",
        queue_name,
        "--kwargs",
        '{"seconds": 60}',
        "--key",
        "long",
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["key"] == "long"
    await wait_until(
        lambda: "sleep_for long started" in supervisor.log(), timeout=30, what="the job to start"
    )
    code, out, _ = workers(ops_env, "job", "long", "--queue", queue_name, "--json")
    assert code == 0 and json.loads(out)["status"] == "active"
    code, out, _ = workers(ops_env, "job", "long", "--queue", queue_name)
    assert code == 0 and "active" in out  # the Rich table

    async with backend_queue(backend, queue_name) as queue:
        code, _, err = workers(ops_env, "abort", "long", "--queue", queue_name)
        asked_at = time.monotonic()
        assert code == 0, err

        async def aborted() -> bool:
            job = await queue.job("long")
            return job is not None and job.status == Status.ABORTED

        await wait_until(aborted, timeout=5, what="the job to be aborted")
        latency = time.monotonic() - asked_at
        print(f"abort latency through the CLI into a worker process on {backend}: {latency:.3f} s")
        assert latency < 1.0
        # The worker process goes on working.
        assert await queue.apply("noop", timeout=20) is None


def test_unknown_queue_task_or_key_exits_2(ops_env: dict[str, str], queue_name: str) -> None:
    code, _, err = workers(ops_env, "enqueue", "noop", "--queue", "nope")
    assert code == 2 and "'nope'" in err
    code, _, err = workers(ops_env, "enqueue", "nope", "--queue", queue_name)
    assert code == 2 and "no task 'nope'" in err and "'noop'" in err
    code, _, err = workers(ops_env, "enqueue", "noop", "--queue", queue_name, "--kwargs", "[1]")
    assert code == 2 and "JSON object" in err
    for command in ("job", "abort"):
        code, _, err = workers(ops_env, command, "missing-key", "--queue", queue_name)
        assert code == 2 and "no job with key 'missing-key'" in err
    code, _, err = workers(ops_env, "retry-failed", "--queue", queue_name, "--function", "nope")
    assert code == 2 and "nope" in err
    code, _, err = workers(ops_env, "purge", "--queue", queue_name, "--status", "failed")
    assert code == 2 and "--yes" in err
    code, _, err = workers(ops_env, "purge", "--queue", queue_name, "--status", "active", "--yes")
    assert code == 2


async def test_retry_failed_and_purge(backend: str, ops_env: dict[str, str], queue_name: str) -> None:
    async with backend_queue(backend, queue_name) as queue:
        for index in range(3):
            job = await queue.enqueue("fail", key=f"failed-{index}")
            assert job is not None
            await queue.finish(job, Status.FAILED, error="boom")
        other = await queue.enqueue("noop", key="failed-noop")
        assert other is not None
        await queue.finish(other, Status.FAILED, error="boom")
        scheduled = await queue.enqueue("noop", key="later", scheduled=4_000_000_000)
        assert scheduled is not None

        code, out, err = workers(
            ops_env, "retry-failed", "--queue", queue_name, "--function", "fail", "--json"
        )
        assert code == 0, err
        assert sorted(json.loads(out)["keys"]) == ["failed-0", "failed-1", "failed-2"]
        for index in range(3):
            job = await queue.job(f"failed-{index}")
            assert job is not None and job.status == Status.QUEUED
        code, out, _ = workers(ops_env, "retry-failed", "--queue", queue_name, "--since", "1h", "--json")
        assert json.loads(out)["keys"] == ["failed-noop"]

        # A job being run is never purged: take one, purge every queued job.
        taken = await queue.dequeue(timeout=5)
        assert taken is not None
        code, out, err = workers(
            ops_env, "purge", "--queue", queue_name, "--status", "queued", "--yes", "--json"
        )
        assert code == 0, err
        assert json.loads(out)["deleted"] >= 3
        assert (await queue.job(taken.key)) is not None
        await taken.finish(Status.FAILED, error="boom")
        code, out, _ = workers(
            ops_env,
            "purge",
            "--queue",
            queue_name,
            "--status",
            "failed",
            "--older-than",
            "1d",
            "--yes",
            "--json",
        )
        assert json.loads(out)["deleted"] == 0  # none is a day old
        code, out, _ = workers(
            ops_env, "purge", "--queue", queue_name, "--status", "failed", "--yes", "--json"
        )
        assert json.loads(out)["deleted"] == 1
        assert await queue.job(taken.key) is None
