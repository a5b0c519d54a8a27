"""Benchmark litestar-saq's ``AsyncpgQueue`` against SAQ's psycopg ``PostgresQueue`` on one PostgreSQL.

Measures, for each queue in one run and on the same server:

* enqueue rate, one job at a time;
* drain rate of N no-op jobs with a SAQ ``Worker`` at concurrency 1 and 10;
* statements per processed job (counted in the client: asyncpg's query logger, psycopg's cursor and
  transaction commands) and commits per processed job (``pg_stat_database.xact_commit`` deltas, in a
  database of the benchmark's own so other sessions do not count);
* enqueue-to-start latency p50/p99 over 500 jobs on an idle worker.

Usage::

    python benchmarks/bench_postgres.py [--jobs 2000] [--database-url postgresql://postgres@127.0.0.1:5432/test]

It prints a Markdown table with the ratio asyncpg / psycopg. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psycopg
from saq import Worker
from saq.queue import Queue
from saq.queue.postgres import PostgresQueue

from litestar_saq.backends.asyncpg import AsyncpgQueue

BENCH_DATABASE = "saq_bench"
LATENCY_JOBS = 500


class StatementCounter:
    """Counts statements sent by the client driver while ``enabled``."""

    def __init__(self) -> None:
        self.count = 0
        self.enabled = False

    def hit(self, *_args: Any) -> None:
        if self.enabled:
            self.count += 1


STATEMENTS = StatementCounter()


def count_psycopg_statements() -> None:
    """Count psycopg statements: every cursor execute plus BEGIN/COMMIT/SAVEPOINT commands."""
    original_execute = psycopg.AsyncCursor.execute
    original_command = psycopg.AsyncConnection._exec_command

    async def execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        STATEMENTS.hit()
        return await original_execute(self, *args, **kwargs)

    def exec_command(self: Any, *args: Any, **kwargs: Any) -> Any:
        STATEMENTS.hit()
        return original_command(self, *args, **kwargs)

    psycopg.AsyncCursor.execute = execute  # type: ignore[method-assign]
    psycopg.AsyncConnection._exec_command = exec_command  # type: ignore[method-assign]


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def with_option(url: str, key: str, value: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{key}={value}"


async def prepare_database(url: str) -> str:
    """Create the benchmark database and fresh schemas; return the benchmark database's URL."""
    admin = await asyncpg.connect(url)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", BENCH_DATABASE):
            await admin.execute(f'CREATE DATABASE "{BENCH_DATABASE}"')
    finally:
        await admin.close()
    bench_url = with_database(url, BENCH_DATABASE)
    connection = await asyncpg.connect(bench_url)
    try:
        for schema in ("bench_asyncpg", "bench_psycopg"):
            await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE; CREATE SCHEMA "{schema}"')
    finally:
        await connection.close()
    return bench_url


def asyncpg_factory(url: str, *, count_statements: bool = False) -> Callable[[], Queue]:
    """Our queue in schema ``bench_asyncpg``; ``count_statements`` adds a query logger (it costs time)."""
    options = {"init": _log_queries} if count_statements else {}

    def make() -> Queue:
        return AsyncpgQueue.from_url(
            with_option(url, "search_path", "bench_asyncpg"), name="bench", pool_options=options
        )

    return make


async def _log_queries(connection: Any) -> None:
    connection.add_query_logger(STATEMENTS.hit)


def psycopg_factory(url: str) -> Callable[[], Queue]:
    def make() -> Queue:
        return PostgresQueue.from_url(
            with_option(url, "options", "-csearch_path%3Dbench_psycopg"), name="bench"
        )

    return make


async def xact_commits(url: str) -> int:
    """Commits in the benchmark database, once closed backends have flushed their statistics."""
    query = "SELECT xact_commit FROM pg_stat_database WHERE datname = $1"
    connection = await asyncpg.connect(url)
    try:
        previous = -100
        for _ in range(20):
            await connection.execute("SELECT pg_stat_clear_snapshot()")
            current = int(await connection.fetchval(query, BENCH_DATABASE))
            if current - previous <= 3:  # settled, give or take our own reads
                return current
            previous = current
            await asyncio.sleep(0.5)
        return previous
    finally:
        await connection.close()


@asynccontextmanager
async def connected(make: Callable[[], Queue]) -> AsyncIterator[Queue]:
    queue = make()
    await queue.connect()
    try:
        yield queue
    finally:
        await queue.disconnect()


@asynccontextmanager
async def worker_running(queue: Queue, concurrency: int, **options: Any) -> AsyncIterator[Worker]:
    worker = Worker(queue, functions=[("noop", noop)], concurrency=concurrency, **options)
    task = asyncio.create_task(worker.start())
    try:
        yield worker
    finally:
        while not hasattr(worker, "event"):
            await asyncio.sleep(0.01)
        worker.event.set()
        await task


async def noop(_ctx: Any) -> None:
    return None


async def enqueue_many(queue: Queue, jobs: int) -> float:
    """Enqueue ``jobs`` no-op jobs one by one; return jobs per second."""
    started = time.perf_counter()
    for _ in range(jobs):
        await queue.enqueue("noop", ttl=-1)
    return jobs / (time.perf_counter() - started)


async def drain(queue: Queue, jobs: int, concurrency: int, url: str, schema: str) -> float:
    """Run a worker until ``jobs`` jobs were processed (or none is left); return jobs per second."""
    done = asyncio.Event()
    processed = 0

    async def after_process(_ctx: Any) -> None:
        nonlocal processed
        processed += 1
        if processed >= jobs:
            done.set()

    async def none_left() -> None:
        # A safety net on its own connection: SAQ's psycopg worker was seen to leave a run short of
        # ``jobs`` after_process calls with no job left in the table.
        connection = await asyncpg.connect(url)
        query = f"SELECT count(*) FROM \"{schema}\".saq_jobs WHERE status IN ('queued', 'active')"
        try:
            while await connection.fetchval(query):
                await asyncio.sleep(0.25)
        finally:
            await connection.close()

    started = time.perf_counter()
    async with worker_running(queue, concurrency, after_process=after_process):
        waiters = [asyncio.ensure_future(done.wait()), asyncio.ensure_future(none_left())]
        await asyncio.wait(waiters, timeout=600, return_when=asyncio.FIRST_COMPLETED)
        elapsed = time.perf_counter() - started
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
    if processed < jobs:
        print(f"  note: {schema} drain at concurrency {concurrency} saw {processed} of {jobs} jobs processed")
    return jobs / elapsed


async def latency(queue: Queue, jobs: int) -> tuple[float, float]:
    """Enqueue ``jobs`` jobs one at a time on an idle worker; return p50 and p99 ms to start."""
    starts: dict[str, float] = {}
    started = asyncio.Event()

    async def record(ctx: Any) -> None:
        starts[ctx["job"].key] = time.perf_counter()
        started.set()

    samples = []
    worker = Worker(queue, functions=[("record", record)], concurrency=10)
    task = asyncio.create_task(worker.start())
    try:
        await asyncio.sleep(0.5)  # let the worker reach its idle wait
        for _ in range(jobs):
            started.clear()
            before = time.perf_counter()
            job = await queue.enqueue("record", ttl=-1)
            assert job is not None
            await asyncio.wait_for(started.wait(), 10)
            samples.append((starts[job.key] - before) * 1000)
    finally:
        worker.event.set()
        await task
    quantiles = statistics.quantiles(samples, n=100)
    return statistics.median(samples), quantiles[98]


async def measure(label: str, make: Callable[[], Queue], url: str, jobs: int) -> dict[str, float]:
    schema = f"bench_{label}"
    results: dict[str, float] = {}
    async with connected(make) as queue:
        results["enqueue"] = await enqueue_many(queue, jobs)
        results["drain_c1"] = await drain(queue, jobs, 1, url, schema)

    commits_before = await xact_commits(url)
    STATEMENTS.count, STATEMENTS.enabled = 0, True
    async with connected(make) as queue:
        results["enqueue_2"] = await enqueue_many(queue, jobs)
        results["drain_c10"] = await drain(queue, jobs, 10, url, schema)
    STATEMENTS.enabled = False
    results["statements"] = STATEMENTS.count / jobs
    results["commits"] = (await xact_commits(url) - commits_before) / jobs

    async with connected(make) as queue:
        results["p50"], results["p99"] = await latency(queue, LATENCY_JOBS)
    print(f"{label}: done", flush=True)
    return results


def table(ours: dict[str, float], theirs: dict[str, float], jobs: int) -> str:
    rows = [
        ("enqueue, one by one (jobs/s)", "enqueue", ".0f"),
        ("enqueue, second run (jobs/s)", "enqueue_2", ".0f"),
        ("drain, concurrency 1 (jobs/s)", "drain_c1", ".0f"),
        ("drain, concurrency 10 (jobs/s)", "drain_c10", ".0f"),
        ("statements per job (enqueue + drain c=10)", "statements", ".2f"),
        ("commits per job (enqueue + drain c=10)", "commits", ".2f"),
        (f"enqueue→start p50 (ms, {LATENCY_JOBS} jobs, idle worker)", "p50", ".2f"),
        (f"enqueue→start p99 (ms, {LATENCY_JOBS} jobs, idle worker)", "p99", ".2f"),
    ]
    lines = [
        f"N = {jobs} no-op jobs, one process, PostgreSQL at the given URL",
        "",
        "| metric | AsyncpgQueue | SAQ PostgresQueue (psycopg) | ratio |",
        "| --- | ---: | ---: | ---: |",
    ]
    for title, key, fmt in rows:
        ratio = ours[key] / theirs[key] if theirs[key] else float("nan")
        lines.append(f"| {title} | {ours[key]:{fmt}} | {theirs[key]:{fmt}} | {ratio:.2f}x |")
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    args = parser.parse_args()
    url = await prepare_database(args.database_url)
    count_psycopg_statements()
    ours = await measure("asyncpg", asyncpg_factory(url, count_statements=True), url, args.jobs)
    theirs = await measure("psycopg", psycopg_factory(url), url, args.jobs)
    print()
    print(table(ours, theirs, args.jobs))


if __name__ == "__main__":
    asyncio.run(main())
