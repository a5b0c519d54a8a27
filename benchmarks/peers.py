"""Our queues beside SAQ's own on the same broker, in one run: drain, enqueue one by one, bulk enqueue.

    python benchmarks/peers.py [--jobs 3000] [--rounds 3] [--concurrency 20]

Every SAQ-style queue is drained by the same raw SAQ ``Worker`` (no-op job). Rounds interleave the
systems so machine drift hits all alike; the table shows medians and the ratios against SAQ's own
queue on the same broker. PostgreSQL runs in the database ``saq_bench`` (see bench_postgres.py).
pgqueuer and streaq are not measured here yet (see docs/benchmark-results.md for their figures).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from saq import Worker
from saq.queue.redis import RedisQueue as SAQRedisQueue

from benchmarks.bench_postgres import asyncpg_factory, prepare_database
from litestar_saq.backends.redis import RedisQueue

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


async def purge(queue: Any) -> None:
    if hasattr(queue, "redis"):
        keys = [key async for key in queue.redis.scan_iter(match=f"saq:*{queue.name}*")]
        if keys:
            await queue.redis.delete(*keys)


async def drain(queue: Any, jobs: int, concurrency: int) -> float:
    done = asyncio.Event()
    count = [0]

    async def noop(_ctx: Any) -> None:
        count[0] += 1
        if count[0] >= jobs:
            done.set()

    if hasattr(queue, "enqueue_many"):
        await queue.enqueue_many(["noop"] * jobs)
    else:
        for start in range(0, jobs, 200):
            await asyncio.gather(*(queue.enqueue("noop") for _ in range(start, min(jobs, start + 200))))
    worker = Worker(queue, [("noop", noop)], concurrency=concurrency)
    worker.SIGNALS = []
    started = time.perf_counter()
    run = asyncio.create_task(worker.start())
    await asyncio.wait_for(done.wait(), 300)
    while await queue.count("incomplete"):
        await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - started
    await worker.stop()
    await run
    return jobs / elapsed


async def enqueue_one_by_one(queue: Any, jobs: int) -> float:
    started = time.perf_counter()
    for _ in range(jobs):
        await queue.enqueue("noop")
    return jobs / (time.perf_counter() - started)


async def enqueue_bulk(queue: Any, jobs: int) -> float:
    started = time.perf_counter()
    await queue.enqueue_many(["noop"] * jobs)
    return jobs / (time.perf_counter() - started)


async def measure(make: Callable[[], Any], jobs: int, concurrency: int, bulk: bool) -> dict[str, float]:
    results: dict[str, float] = {}
    for metric in ("enqueue", "bulk", "drain"):
        if metric == "bulk" and not bulk:
            continue
        queue = make()
        await queue.connect()
        try:
            if metric == "enqueue":
                results[metric] = await enqueue_one_by_one(queue, jobs)
            elif metric == "bulk":
                results[metric] = await enqueue_bulk(queue, jobs)
            else:
                results[metric] = await drain(queue, jobs, concurrency)
        finally:
            await purge(queue)
            if not hasattr(queue, "redis"):
                async with queue._pool.connection() as connection:  # benchmark clean-up only
                    await connection.execute("DELETE FROM saq_jobs")
            await queue.disconnect()
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--database-url", default=DATABASE_URL)
    args = parser.parse_args()
    logging.getLogger("saq").setLevel(logging.WARNING)
    logging.getLogger("litestar_saq").setLevel(logging.WARNING)
    bench_url = await prepare_database(args.database_url)

    def named(factory: Callable[..., Any]) -> Callable[[], Any]:
        return lambda: factory(REDIS_URL, name=f"peers-{uuid.uuid4().hex[:6]}")

    systems: dict[str, tuple[Callable[[], Any], bool]] = {
        "SAQ RedisQueue": (named(SAQRedisQueue.from_url), False),
        "our RedisQueue": (named(RedisQueue.from_url), True),
        "our AsyncpgQueue": (asyncpg_factory(bench_url), True),
    }
    rates: dict[str, dict[str, list[float]]] = {name: {} for name in systems}
    names = list(systems)
    for round_number in range(args.rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            make, bulk = systems[name]
            for metric, rate in (await measure(make, args.jobs, args.concurrency, bulk)).items():
                rates[name].setdefault(metric, []).append(rate)
    median = {name: {m: statistics.median(v) for m, v in by.items()} for name, by in rates.items()}
    saq = median["SAQ RedisQueue"]
    print(f"peers, N={args.jobs}, concurrency={args.concurrency}, rounds={args.rounds} (medians, jobs/s)")
    print("| system | drain | enqueue one by one | enqueue_many | bulk / one by one |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, by in median.items():
        bulk = by.get("bulk")
        bulk_ratio = f"{bulk / by['enqueue']:.1f}x" if bulk else "—"
        print(
            f"| {name} | {by['drain']:,.0f} | {by['enqueue']:,.0f} | {f'{bulk:,.0f}' if bulk else '—'} | "
            f"{bulk_ratio} |"
        )
    ours = median["our RedisQueue"]
    print(
        f"| ratio our Redis / SAQ Redis | {ours['drain'] / saq['drain']:.2f} | "
        f"{ours['enqueue'] / saq['enqueue']:.2f} | | |"
    )


if __name__ == "__main__":
    asyncio.run(main())
