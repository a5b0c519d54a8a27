"""A caller waits for its job's result: ``apply`` round trips on an idle worker, ours vs SAQ's, in one run.

    python benchmarks/bench_apply.py [--calls 100] [--rounds 4] [--concurrency 4]

The same four systems as ``bench_latency.py`` (Redis and PostgreSQL, litestar-saq's queue with the
plugin worker vs SAQ's queue with SAQ's ``Worker``). Each call is ``await queue.apply("record", a=n)``:
enqueue, wait for the worker to run the job, read its result; the next call starts when it returned, so
the worker is idle each time, as behind a handler that awaits a job. Every second call is a
``queue.map`` of two jobs instead (two enqueues at once, two waits). Measured with
``time.perf_counter()`` around the call; the systems take turns round by round. ``slow`` counts the calls
over 100 ms (a wait that missed its wake-up and waited for a poll). SAQ's own ``apply``/``map`` read the
jobs every ``poll_interval`` (0.5 s) and sleep once more after the last read, so each of its calls takes
about a second: a default of 100 calls keeps the run to a few minutes. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_latency import (  # importable thanks to the path line above
    DATABASE_URL,
    LABELS,
    SYSTEMS,
    idle_worker,
    p99,
    prepare_database,
)

WARMUP_CALLS = 3
SLOW_MS = 100.0


async def one_round(system: str, calls: int, pg_url: str, concurrency: int) -> list[float]:
    """Start an idle worker and make ``calls`` calls one after another; return each call's time in ms."""

    async def record(_ctx: Any, *, a: int) -> int:
        return a

    samples: list[float] = []
    async with idle_worker(system, "apply", pg_url, concurrency, record) as queue:
        for index in range(WARMUP_CALLS + calls):
            before = time.perf_counter()
            if index % 2:
                got = await queue.map("record", [{"a": index}, {"a": -index}], timeout=30)
                assert got == [index, -index], got
            else:
                assert await queue.apply("record", a=index, timeout=30) == index
            if index >= WARMUP_CALLS:
                samples.append((time.perf_counter() - before) * 1000)
    return samples


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=100, help="calls per system (default 100)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=4, help="worker concurrency (default 4)")
    parser.add_argument("--database-url", default=DATABASE_URL)
    args = parser.parse_args()
    logging.getLogger("saq").setLevel(logging.ERROR)  # SAQ logs every job at INFO
    pg_url = await prepare_database(args.database_url)
    per_round = max(1, args.calls // args.rounds)
    samples: dict[str, list[float]] = {system: [] for system in SYSTEMS}
    for system in SYSTEMS:  # warm up: tables, connections, caches
        await one_round(system, 10, pg_url, args.concurrency)
    for round_number in range(args.rounds):
        shift = round_number % len(SYSTEMS)
        for system in SYSTEMS[shift:] + SYSTEMS[:shift]:
            samples[system].extend(await one_round(system, per_round, pg_url, args.concurrency))
    print(
        f"apply/map round trip on an idle worker, {per_round * args.rounds} calls per system one after "
        f"another (half apply, half map of 2), {args.rounds} interleaved rounds, "
        f"concurrency {args.concurrency}"
    )
    print()
    print(f"| system | p50 ms | p99 ms | max ms | calls over {SLOW_MS:.0f} ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for system in SYSTEMS:
        values = samples[system]
        slow = sum(value > SLOW_MS for value in values)
        print(
            f"| {LABELS[system]} | {statistics.median(values):.2f} | {p99(values):.2f} | "
            f"{max(values):.1f} | {slow} |"
        )
    for title, ours, theirs in (("Redis", "redis-plugin", "redis-saq"), ("PG", "pg-asyncpg", "pg-psycopg")):
        p50 = statistics.median(samples[ours]) / statistics.median(samples[theirs])
        tail = p99(samples[ours]) / p99(samples[theirs])
        print(f"| ratio {title} ours/SAQ's (lower is better) | {p50:.2f}x | {tail:.2f}x | | |")


if __name__ == "__main__":
    asyncio.run(main())
