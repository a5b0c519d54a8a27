"""Our queues beside SAQ's own and the peers, in one run: drain, enqueue one by one, bulk enqueue,
enqueue→start latency, PostgreSQL commits per job.

    python benchmarks/peers.py [--jobs 3000] [--rounds 3] [--concurrency 20] [--pg-concurrency 10]

Every SAQ-style queue is drained by the same raw SAQ ``Worker``, and ours also by our
``PluginWorker`` (what the plugin runs) (no-op job). Rounds interleave the
systems so machine drift hits all alike; the table shows medians and the ratios against SAQ's own
queue on the same broker. PostgreSQL runs in the database ``saq_bench`` (see bench_postgres.py);
commits per job are pg_stat_database.xact_commit of that database over the drain (worker start to
stop, enqueue excluded, connections closed before and after so that their backends flush the
statistics), less the benchmark's own polls for "no job left" (one commit each, same interval for
every system), divided by N. pgqueuer and streaq (``bench`` dependency group) run when they
import; see peer_systems.py for how each system is driven.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.bench_postgres import BENCH_DATABASE, prepare_database, with_database, xact_commits
from benchmarks.peer_systems import build

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


async def timed(action: Callable[[], Awaitable[Any]], jobs: int) -> float:
    started = time.perf_counter()
    await action()
    return jobs / (time.perf_counter() - started)


async def enqueue_one_by_one(system: Any, jobs: int) -> None:
    for _ in range(jobs):
        await system.enqueue_one()


async def drain(system: Any, jobs: int, concurrency: int, bench_url: str) -> dict[str, float]:
    """Bulk-enqueue ``jobs``, then time a worker until all ran; PostgreSQL commits of the drain only."""
    done = asyncio.Event()
    count = [0]

    def on_start() -> None:
        count[0] += 1
        if count[0] >= jobs:
            done.set()

    await system.enqueue_bulk(jobs)
    await system.flush()
    before = await xact_commits(bench_url) if system.broker == "postgres" else 0
    polls_before = getattr(system, "polls", 0)
    started = time.perf_counter()
    await system.start_worker(on_start, concurrency)
    waiters = [asyncio.ensure_future(done.wait())]
    if system.broker == "postgres":  # SAQ's psycopg worker was seen to stop short of N starts
        waiters.append(asyncio.ensure_future(system.settled()))
    await asyncio.wait(waiters, timeout=300, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)  # a cancelled query must end before the next
    if count[0] < jobs:
        print(f"  note: {system.name} drain saw {count[0]} of {jobs} jobs start", file=sys.stderr)
    await system.settled()
    elapsed = time.perf_counter() - started
    await system.stop_worker()
    result = {"drain": jobs / elapsed}
    if system.broker == "postgres":
        await system.flush()
        polls = system.polls - polls_before  # the benchmark's own "is it done?" reads are not the system's
        result["commits"] = (await xact_commits(bench_url) - before - polls) / jobs
    return result


WARMUP_JOBS = 3
"""Latency jobs each system runs first, not counted: the first starts after a connect pay for setting up
connections (prepared statements, subscriptions), which is start-up cost, not an idle worker's latency."""


async def latency(system: Any, jobs: int, concurrency: int) -> dict[str, float]:
    """Enqueue one job at a time on an idle worker; ms from before enqueue to the job's first line."""
    started = asyncio.Event()
    at = [0.0]

    def on_start() -> None:
        at[0] = time.perf_counter()
        started.set()

    await system.start_worker(on_start, concurrency)
    samples = []
    try:
        await asyncio.sleep(0.5)  # let the worker reach its idle wait
        for index in range(WARMUP_JOBS + jobs):
            started.clear()
            before = time.perf_counter()
            await system.enqueue_one()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(started.wait(), 10)
            if not started.is_set():
                print(f"  note: {system.name}: a latency job did not start in 10 s", file=sys.stderr)
                continue
            if index >= WARMUP_JOBS:
                samples.append((at[0] - before) * 1000)
    finally:
        await system.stop_worker()
    return {"p50": statistics.median(samples), "p99": statistics.quantiles(samples, n=100)[98]}


async def measure(system: Any, args: argparse.Namespace, bench_url: str) -> dict[str, float]:
    if hasattr(system, "measure_elsewhere"):  # arq: in its own interpreter (see peer_systems.Arq)
        return dict(await system.measure_elsewhere(args.jobs, args.latency_jobs, args.concurrency))
    results: dict[str, float] = {}
    for metric in ("enqueue", "bulk", "drain", "latency"):
        if metric == "bulk" and not system.bulk:
            continue
        await system.open()
        try:
            if metric == "enqueue":
                results[metric] = await timed(lambda: enqueue_one_by_one(system, args.jobs), args.jobs)
            elif metric == "bulk":
                results[metric] = await timed(lambda: system.enqueue_bulk(args.jobs), args.jobs)
            elif metric == "drain":
                concurrency = args.concurrency if system.broker == "redis" else args.pg_concurrency
                results.update(await drain(system, args.jobs, concurrency, bench_url))
            else:
                results.update(await latency(system, args.latency_jobs, 10))
        finally:
            await system.close()
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--latency-jobs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=20, help="worker concurrency on Redis")
    parser.add_argument("--pg-concurrency", type=int, default=10, help="worker concurrency on PostgreSQL")
    parser.add_argument("--only", help="comma-separated system names")
    parser.add_argument("--database-url", default=DATABASE_URL)
    parser.add_argument("--json", help="also write the medians to this JSON file (run_all.py)")
    args = parser.parse_args()
    for name in ("saq", "litestar_saq", "pgqueuer", "streaq", "arq"):
        logging.getLogger(name).setLevel(logging.WARNING)
    bench_url = with_database(args.database_url, BENCH_DATABASE)
    systems = build(REDIS_URL, bench_url, set(args.only.split(",")) if args.only else None)
    if any(system.broker == "postgres" for system in systems):
        # It recreates the benchmark schemas: a Redis-only run must not pull them from under another.
        await prepare_database(args.database_url)
    rates: dict[str, dict[str, list[float]]] = {system.name: {} for system in systems}
    for round_number in range(args.rounds):
        shift = round_number % len(systems)
        for system in systems[shift:] + systems[:shift]:
            for metric, value in (await measure(system, args, bench_url)).items():
                rates[system.name].setdefault(metric, []).append(value)
            print(f"  round {round_number + 1}: {system.name} done", file=sys.stderr)
    median = {name: {m: statistics.median(v) for m, v in by.items()} for name, by in rates.items()}
    print(
        f"peers, N={args.jobs}, concurrency {args.concurrency} Redis / {args.pg_concurrency} PostgreSQL, "
        f"latency {args.latency_jobs} jobs, rounds={args.rounds} (medians)"
    )
    print("| system | drain jobs/s | enqueue one by one /s | bulk enqueue /s | p50 / p99 ms | commits/job |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    reference = {"redis": median.get("SAQ RedisQueue"), "postgres": median.get("SAQ PostgresQueue (psycopg)")}
    for system in systems:
        by, ref = median[system.name], reference[system.broker]

        def cell(metric: str, by: dict[str, float] = by, ref: dict[str, float] | None = ref) -> str:
            if metric not in by:
                return "—"
            ratio = f" ({by[metric] / ref[metric]:.2f}x)" if ref and ref is not by and metric in ref else ""
            return f"{by[metric]:,.0f}{ratio}"

        commits = f"{by['commits']:.2f}" if "commits" in by else "—"
        print(
            f"| {system.name} | {cell('drain')} | {cell('enqueue')} | {cell('bulk')} | "
            f"{by['p50']:.2f} / {by['p99']:.2f} | {commits} |"
        )
    print("Ratios in brackets: against SAQ's own queue on the same broker.")
    if args.json:
        brokers = {system.name: system.broker for system in systems}
        with open(args.json, "w") as out:
            json.dump({"medians": median, "brokers": brokers, "jobs": args.jobs, "rounds": args.rounds}, out)


if __name__ == "__main__":
    asyncio.run(main())
