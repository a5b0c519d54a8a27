"""Worker recycling: a ``--process`` child that reached ``max_jobs_per_worker`` or
``max_memory_per_worker_mb`` finishes its jobs, exits with ``EXIT_RECYCLE`` and is replaced at once;
no job is lost or run twice. In-process workers cannot be recycled: a config error says so."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from saq.job import Status

from litestar_saq import QueueConfig
from litestar_saq.brokers import queue_from_dsn
from litestar_saq.exceptions import SAQConfigError
from litestar_saq.recycling import RecycleLimits
from litestar_saq.worker_group import build_worker
from tests.support.brokers import backend_queue
from tests.support.poll import wait_until
from tests.support.procs import CliProcess, is_alive

JOBS = 2000
MAX_JOBS = 100


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_jobs_per_worker", 0), ("max_memory_per_worker_mb", -1), ("max_jobs_per_worker", True)],
)
def test_a_limit_must_be_positive(field: str, value: Any) -> None:
    with pytest.raises(SAQConfigError, match=f"queue 'q': {field}={value!r} must be a number > 0"):
        QueueConfig(name="q", dsn="redis://localhost", **{field: value})


def test_in_process_workers_cannot_be_recycled() -> None:
    with pytest.raises(SAQConfigError, match="max_jobs_per_worker=5 needs separate_process=True"):
        QueueConfig(name="q", dsn="memory://", separate_process=False, max_jobs_per_worker=5)


async def test_worker_takes_exactly_max_jobs_then_stops(queue_name: str) -> None:
    """Ten slots, a limit of 25: the worker takes 25 jobs, lets them finish, and its ``start()`` returns."""
    finished: list[str] = []

    async def short(ctx: dict[str, Any]) -> None:
        await asyncio.sleep(0.01)  # what the test is about: jobs still running when the limit is reached
        finished.append(ctx["job"].key)

    async with backend_queue("redis", queue_name) as queue:
        await asyncio.gather(*(queue.enqueue("short", key=f"j{index}") for index in range(40)))
        queue_config = QueueConfig(name=queue_name, broker_instance=queue, tasks=[("short", short)])
        worker = build_worker(queue_config, queue, Litestar())
        worker.recycle_limits = RecycleLimits(max_jobs=25)
        await asyncio.wait_for(worker.start(), timeout=20)
        assert len(finished) == 25
        assert worker.recycle_limits.reached is not None and "25 jobs" in worker.recycle_limits.reached
        assert await queue.count("queued") == 15, "the jobs it did not take are still queued"
        for key in finished:
            stored = await queue.job(key)
            assert stored is not None and stored.status == Status.COMPLETE


@pytest.fixture(params=["redis", "postgres"])
def broker_dsn(request: pytest.FixtureRequest, redis_url: str, database_url: str) -> str:
    return redis_url if request.param == "redis" else database_url


@pytest.fixture
async def runs_table(database_url: str) -> AsyncIterator[tuple[str, asyncpg.Connection]]:
    table = f"runs_{uuid.uuid4().hex[:10]}"
    connection = await asyncpg.connect(database_url)
    await connection.execute(
        f'CREATE TABLE "{table}" '
        "(key TEXT, attempt INT, pid INT, ran_at TIMESTAMPTZ DEFAULT clock_timestamp())"
    )
    yield table, connection
    await connection.execute(f'DROP TABLE "{table}"')
    await connection.close()


async def test_2000_jobs_with_recycling_every_100_each_run_exactly_once(
    cli: Callable[..., CliProcess],
    ops_env: dict[str, str],
    broker_dsn: str,
    database_url: str,
    queue_name: str,
    runs_table: tuple[str, asyncpg.Connection],
) -> None:
    table, connection = runs_table
    queue = queue_from_dsn(broker_dsn, name=queue_name)
    await queue.connect()
    try:
        # PostgreSQL keys are unique across queues: the queue's name keeps them this test's own.
        keys = [f"{queue_name}-{index}" for index in range(JOBS)]
        for start in range(0, JOBS, 500):
            await asyncio.gather(*(queue.enqueue("record_run", key=key) for key in keys[start : start + 500]))
        env = {
            **ops_env,
            "TEST_DSN": broker_dsn,
            "DATABASE_URL": database_url,
            "TEST_RUNS_TABLE": table,
            "TEST_MAX_JOBS": str(MAX_JOBS),
        }
        process = cli(["workers", "run", "--process", "--workers", "2"], env)

        async def all_ran() -> bool:
            return await connection.fetchval(f'SELECT count(DISTINCT key) FROM "{table}"') >= JOBS

        await wait_until(all_ran, timeout=120, interval=0.5, what=f"{JOBS} jobs to run")
        process.send(signal.SIGTERM)
        assert await process.wait_exit(30) == 0, process.log()[-3000:]
    finally:
        await queue.disconnect()
    rows = await connection.fetch(
        f'SELECT key, count(*) AS runs, max(attempt) AS attempt FROM "{table}" GROUP BY key'
    )
    assert {row["key"] for row in rows} == set(keys)
    assert [row["key"] for row in rows if row["runs"] != 1 or row["attempt"] != 1] == [], "a job ran twice"
    per_pid = await connection.fetch(
        f'SELECT pid, count(*) AS jobs, min(ran_at) AS first, max(ran_at) AS last FROM "{table}" GROUP BY pid'
    )
    assert max(row["jobs"] for row in per_pid) <= MAX_JOBS
    assert len(per_pid) >= JOBS // MAX_JOBS, "children were recycled"
    assert "recycled" in process.log()
    print(f"recycle gaps on {broker_dsn.split(':')[0]}: {_restart_gaps(per_pid)}")


def _restart_gaps(per_pid: list[Any]) -> str:
    """From a child's last job to the first job of a child started after it (two children interleave)."""
    gaps = []
    for child in per_pid:
        earlier = [other["last"] for other in per_pid if other["last"] < child["first"]]
        if earlier:
            gaps.append((child["first"] - max(earlier)).total_seconds())
    gaps.sort()
    return (
        f"{len(gaps)} restarts, median {gaps[len(gaps) // 2]:.2f} s, max {gaps[-1]:.2f} s" if gaps else "none"
    )


async def test_a_task_that_leaks_memory_gets_its_worker_recycled(
    cli: Callable[..., CliProcess], ops_env: dict[str, str], redis_queue: Any
) -> None:
    process = cli(["workers", "run", "--process", "--workers", "1"], {**ops_env, "TEST_MAX_MEMORY_MB": "150"})
    first = await redis_queue.apply("leak", megabytes=0, timeout=30)
    assert await redis_queue.apply("leak", megabytes=0, timeout=30) == first, "under the limit: no recycling"
    assert await redis_queue.apply("leak", megabytes=160, timeout=30) == first, "the leaking job completes"
    leaked_at = time.monotonic()
    fresh = await redis_queue.apply("leak", megabytes=0, timeout=30)
    restart_s = time.monotonic() - leaked_at
    assert fresh != first
    await wait_until(lambda: not is_alive(first), timeout=10, what="the recycled child to be gone")
    log = process.log()
    assert "recycled" in log and "max_memory_per_worker_mb=150" in log, log[-3000:]
    print(f"memory recycle: leaking job done -> next job done in a fresh child: {restart_s:.2f} s")
