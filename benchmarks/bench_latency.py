"""Enqueue-to-start latency on an idle worker: Redis and PostgreSQL, ours vs SAQ's, in one run.

    python benchmarks/bench_latency.py [--jobs 500] [--rounds 5] [--concurrency 10] [--json out.json]

Four systems, each a worker waiting on an empty queue:

* ``redis-plugin``: litestar-saq's ``RedisQueue`` with the worker ``build_worker`` makes from a
  ``QueueConfig`` (what the plugin runs);
* ``redis-saq``: SAQ's own ``RedisQueue`` with a plain SAQ ``Worker``;
* ``pg-asyncpg``: litestar-saq's ``AsyncpgQueue`` with the plugin worker;
* ``pg-psycopg``: SAQ's ``PostgresQueue`` (psycopg) with a plain SAQ ``Worker``.

Jobs are enqueued one at a time: the next job is enqueued only after the previous one has started, so the
worker is idle (waiting for a wake-up) every time. The latency of a job is the time from just before
``queue.enqueue()`` is called to the first line of the task, both read with ``time.perf_counter()`` in the
same process (enqueuer and worker share one event loop, as a web process with an in-process worker does).
The ``--jobs`` jobs per system are split into ``--rounds`` rounds, and the systems take turns round by round
(in a rotating order) so that drift on the machine affects all of them alike; p50/p99 are over all jobs.
Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from litestar import Litestar
from saq import Worker
from saq.queue.postgres import PostgresQueue
from saq.queue.redis import RedisQueue as SAQRedisQueue

from litestar_saq import QueueConfig
from litestar_saq.backends.asyncpg import AsyncpgQueue
from litestar_saq.backends.redis import RedisQueue
from litestar_saq.worker_group import build_worker

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
BENCH_DATABASE = "saq_bench_latency"
SYSTEMS = ("redis-plugin", "redis-saq", "pg-asyncpg", "pg-psycopg")
LABELS = {
    "redis-plugin": "Redis: litestar-saq RedisQueue + plugin worker",
    "redis-saq": "Redis: SAQ RedisQueue + SAQ Worker",
    "pg-asyncpg": "PostgreSQL: litestar-saq AsyncpgQueue + plugin worker",
    "pg-psycopg": "PostgreSQL: SAQ PostgresQueue (psycopg) + SAQ Worker",
}


async def prepare_database(url: str) -> str:
    """Create the benchmark's own database (so other users of ``test`` are not disturbed); return its URL."""
    admin = await asyncpg.connect(url)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", BENCH_DATABASE):
            await admin.execute(f'CREATE DATABASE "{BENCH_DATABASE}"')
    finally:
        await admin.close()
    return urlunsplit(urlsplit(url)._replace(path=f"/{BENCH_DATABASE}"))


def make_system(system: str, name: str, pg_url: str, concurrency: int, task: Any) -> tuple[Any, Any]:
    """Return an unconnected queue and a factory for its worker."""
    functions = [("record", task)]
    if system == "redis-plugin":
        queue: Any = RedisQueue.from_url(REDIS_URL, name=name)
    elif system == "redis-saq":
        queue = SAQRedisQueue.from_url(REDIS_URL, name=name)
    elif system == "pg-asyncpg":
        queue = AsyncpgQueue.from_url(pg_url, name=name)
    else:
        queue = PostgresQueue.from_url(pg_url, name=name)

    def worker() -> Any:
        if system in ("redis-plugin", "pg-asyncpg"):
            dsn = REDIS_URL if system == "redis-plugin" else pg_url
            config = QueueConfig(name=name, dsn=dsn, tasks=functions, concurrency=concurrency)
            return build_worker(config, queue, Litestar(logging_config=None))
        plain = Worker(queue, functions, concurrency=concurrency)
        plain.SIGNALS = []
        return plain

    return queue, worker


async def cleanup(system: str, queue: Any, name: str) -> None:
    if system.startswith("redis"):
        keys = [key async for key in queue.redis.scan_iter(match=f"saq:*{name}*")]
        if keys:
            await queue.redis.delete(*keys)
    elif system == "pg-asyncpg":
        async with queue.pool.acquire() as connection:
            await connection.execute("DELETE FROM saq_jobs WHERE queue = $1", name)
    else:
        async with queue.pool.connection() as connection:
            await connection.execute("DELETE FROM saq_jobs WHERE queue = %s", (name,))


WARMUP_JOBS = 3
"""Jobs each round runs first, not counted: the first starts after a connect pay for setting up
connections (prepared statements, subscriptions), which is start-up cost, not an idle worker's latency."""


async def one_round(system: str, jobs: int, pg_url: str, concurrency: int) -> list[float]:
    """Start an idle worker, enqueue ``jobs`` jobs one at a time; return each job's latency in ms."""
    started_at: dict[str, float] = {}
    started = asyncio.Event()

    async def record(ctx: Any) -> None:
        started_at[ctx["job"].key] = time.perf_counter()
        started.set()

    samples: list[float] = []
    async with idle_worker(system, "lat", pg_url, concurrency, record) as queue:
        for index in range(WARMUP_JOBS + jobs):
            started.clear()
            before = time.perf_counter()
            job = await queue.enqueue("record", timeout=30)
            assert job is not None
            await asyncio.wait_for(started.wait(), 30)
            if index >= WARMUP_JOBS:
                samples.append((started_at[job.key] - before) * 1000)
            await asyncio.sleep(0.002)  # let the worker finish the job and go back to waiting
    return samples


@contextlib.asynccontextmanager
async def idle_worker(
    system: str, prefix: str, pg_url: str, concurrency: int, task: Any
) -> AsyncIterator[Any]:
    """A connected queue of ``system`` (its own name) whose worker runs ``task`` and waits idle."""
    name = f"{prefix}-{system}-{uuid.uuid4().hex[:6]}"
    queue, make_worker = make_system(system, name, pg_url, concurrency, task)
    await queue.connect()
    worker = make_worker()
    run = asyncio.create_task(worker.start())
    try:
        await asyncio.sleep(0.5)  # let the worker reach its idle wait
        yield queue
    finally:
        await stop(worker)
        await run
        await cleanup(system, queue, name)
        await queue.disconnect()


async def stop(worker: Any) -> None:
    stop_method: Callable[[], Awaitable[None]] | None = getattr(worker, "stop", None)
    if stop_method is not None:
        await stop_method()
    else:  # pragma: no cover - every SAQ 0.26 worker has stop()
        worker.event.set()


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=500, help="jobs per system (default 500)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=10, help="worker concurrency (default 10)")
    parser.add_argument("--database-url", default=DATABASE_URL)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    logging.getLogger("saq").setLevel(logging.ERROR)  # SAQ logs every job at INFO
    pg_url = await prepare_database(args.database_url)
    per_round = max(1, args.jobs // args.rounds)
    samples: dict[str, list[float]] = {system: [] for system in SYSTEMS}
    round_p50: dict[str, list[float]] = {system: [] for system in SYSTEMS}
    for system in SYSTEMS:  # warm up: create tables, open connections once, fill caches
        await one_round(system, 20, pg_url, args.concurrency)
    for round_number in range(args.rounds):
        shift = round_number % len(SYSTEMS)
        for system in SYSTEMS[shift:] + SYSTEMS[:shift]:
            got = await one_round(system, per_round, pg_url, args.concurrency)
            samples[system].extend(got)
            round_p50[system].append(statistics.median(got))
    results = {
        system: {"p50": statistics.median(values), "p99": p99(values), "n": len(values)}
        for system, values in samples.items()
    }
    n = per_round * args.rounds
    print(
        f"Enqueue→start latency, idle worker, N={n} jobs per system one at a time "
        f"({args.rounds} interleaved rounds of {per_round}), worker concurrency={args.concurrency}, "
        "1 job in flight"
    )
    print()
    print("| system | p50 ms | p99 ms | p50 of each round (ms) |")
    print("| --- | ---: | ---: | --- |")
    for system in SYSTEMS:
        rounds = ", ".join(f"{value:.2f}" for value in round_p50[system])
        print(
            f"| {LABELS[system]} | {results[system]['p50']:.2f} | {results[system]['p99']:.2f} | {rounds} |"
        )
    ratios = {
        "redis_p50": results["redis-plugin"]["p50"] / results["redis-saq"]["p50"],
        "redis_p99": results["redis-plugin"]["p99"] / results["redis-saq"]["p99"],
        "pg_p50": results["pg-asyncpg"]["p50"] / results["pg-psycopg"]["p50"],
        "pg_p99": results["pg-asyncpg"]["p99"] / results["pg-psycopg"]["p99"],
    }
    for title, key in (("Redis plugin/SAQ", "redis"), ("PG asyncpg/psycopg", "pg")):
        p50_ratio, p99_ratio = ratios[f"{key}_p50"], ratios[f"{key}_p99"]
        print(f"| ratio {title} (lower is better) | {p50_ratio:.2f}x | {p99_ratio:.2f}x | |")
    if args.json:
        with open(args.json, "w") as file:
            json.dump(
                {
                    "n": n,
                    "rounds": args.rounds,
                    "concurrency": args.concurrency,
                    "results": results,
                    "ratios": ratios,
                },
                file,
                indent=2,
            )


if __name__ == "__main__":
    asyncio.run(main())
