"""Every job runs once through ``workers run --process --workers 2``, and a killed worker loses none.

Real processes, real brokers, a sweep every second (the setting under which SAQ alone ran a job twice).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from saq.job import Status

from litestar_saq.brokers import queue_from_dsn
from tests.support.poll import wait_until
from tests.support.procs import CliProcess, kill_session, start_cli

APP = "tests.reliability.apps.counting_app:app"
JOBS = 5000


@pytest.fixture(params=["redis", "postgres"])
def broker_dsn(request: pytest.FixtureRequest, redis_url: str, database_url: str) -> str:
    return redis_url if request.param == "redis" else database_url


@pytest.fixture
async def runs_table(database_url: str) -> AsyncIterator[tuple[str, asyncpg.Connection]]:
    table = f"runs_{uuid.uuid4().hex[:10]}"
    connection = await asyncpg.connect(database_url)
    await connection.execute(f'CREATE TABLE "{table}" (key TEXT, attempt INT, pid INT)')
    yield table, connection
    await connection.execute(f'DROP TABLE "{table}"')
    await connection.close()


@pytest.fixture
async def workers(
    tmp_path: Path, broker_dsn: str, queue_name: str, runs_table: tuple[str, Any], database_url: str
) -> AsyncIterator[Callable[[], CliProcess]]:
    started: list[CliProcess] = []
    env = {
        **os.environ,
        "COUNT_DSN": broker_dsn,
        "COUNT_QUEUE": queue_name,
        "COUNT_TABLE": runs_table[0],
        "DATABASE_URL": database_url,
    }

    def start() -> CliProcess:
        process = start_cli(
            APP, ["workers", "run", "--process", "--workers", "2"], env, tmp_path / "workers.log"
        )
        started.append(process)
        return process

    yield start
    for process in started:
        kill_session(process)


@pytest.fixture
async def queue(broker_dsn: str, queue_name: str) -> AsyncIterator[Any]:
    queue = queue_from_dsn(broker_dsn, name=queue_name)
    await queue.connect()
    yield queue
    await queue.disconnect()


async def test_5000_jobs_through_two_worker_processes_each_run_exactly_once(
    workers: Callable[[], CliProcess], queue: Any, runs_table: tuple[str, asyncpg.Connection]
) -> None:
    table, connection = runs_table
    # SAQ's PostgreSQL table keys jobs by key alone, across queues: keys of this run only.
    keys = [f"{queue.name}-once-{index}" for index in range(JOBS)]
    for start in range(0, JOBS, 500):
        enqueued = await asyncio.gather(
            *(queue.enqueue("record_run", key=key) for key in keys[start : start + 500])
        )
        assert None not in enqueued, "every key is new, so every enqueue stores a job"
    process = workers()

    async def all_ran() -> bool:
        return await connection.fetchval(f'SELECT count(DISTINCT key) FROM "{table}"') >= JOBS

    await wait_until(all_ran, timeout=120, what=f"{JOBS} jobs to run", interval=0.5)
    process.send(signal.SIGTERM)
    assert await process.wait_exit(30) == 0, process.log()[-3000:]
    rows = await connection.fetch(f'SELECT key, count(*) AS runs FROM "{table}" GROUP BY key')
    runs = {row["key"]: row["runs"] for row in rows}
    assert set(runs) == set(keys)
    twice = {key: count for key, count in runs.items() if count != 1}
    assert twice == {}, f"{len(twice)} jobs ran more than once"
    pids = {row["pid"] for row in await connection.fetch(f'SELECT DISTINCT pid FROM "{table}"')}
    assert len(pids) == 2, "both worker processes took jobs"


async def test_job_of_a_killed_worker_runs_again_soon(
    workers: Callable[[], CliProcess], queue: Any, runs_table: tuple[str, asyncpg.Connection]
) -> None:
    table, connection = runs_table
    process = workers()
    job = await queue.enqueue("record_run", seconds=60, timeout=600, retries=2)
    assert job is not None

    async def first_run_pid() -> Any:
        return await connection.fetchval(f'SELECT pid FROM "{table}" WHERE key = $1 AND attempt = 1', job.key)

    victim = await wait_until(first_run_pid, timeout=30, what="the job to start")
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)

    async def second_run() -> Any:
        return await connection.fetchrow(
            f'SELECT pid, attempt FROM "{table}" WHERE key = $1 AND attempt = 2', job.key
        )

    rerun = await wait_until(second_run, timeout=40, what="the job to run again")
    recovery_s = time.monotonic() - killed_at
    assert rerun["pid"] != victim
    stored = await queue.job(job.key)
    assert stored is not None
    assert stored.status == Status.ACTIVE
    assert "swept" in (stored.error or "") or "died" in (stored.error or "")
    # The job's timeout is 10 minutes: it came back because its worker's death was noticed.
    assert recovery_s < 30, f"recovered after {recovery_s:.1f} s"
    print(f"killed worker's job ran again after {recovery_s:.1f} s")
    process.send(signal.SIGTERM)
    await process.wait_exit(30)
