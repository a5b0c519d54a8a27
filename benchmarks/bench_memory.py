"""Memory broker: how many no-op jobs one worker drains per second from ``memory://``.

    python benchmarks/bench_memory.py [--jobs 20000] [--concurrency 10] [--rounds 3]

Two contestants on a ``MemoryQueue``: a raw SAQ ``Worker`` (``raw``) and the plugin's worker from
``build_worker`` (``plugin``). Each round enqueues N jobs in bulk, then times the worker until every job
has finished (the target: at least 10,000 jobs/s, so tests on ``memory://`` stay fast). Rounds
alternate the two; the table shows medians.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
import uuid
from typing import Any

from litestar import Litestar
from saq import Worker

from litestar_saq import QueueConfig
from litestar_saq.backends.memory import MemoryQueue
from litestar_saq.worker_group import build_worker

TARGET = 10_000


async def drain(kind: str, jobs: int, concurrency: int) -> float:
    name = f"bench-memory-{uuid.uuid4().hex[:6]}"
    done = asyncio.Event()
    count = [0]

    async def noop(_ctx: Any) -> None:
        count[0] += 1
        if count[0] >= jobs:
            done.set()

    queue = MemoryQueue(name=name)
    await queue.connect()
    if kind == "raw":
        worker: Any = Worker(queue, [("noop", noop)], concurrency=concurrency)
        worker.SIGNALS = []
    else:
        config = QueueConfig(
            name=name,
            dsn="memory://",
            tasks=[("noop", noop)],
            concurrency=concurrency,
            separate_process=False,
        )
        worker = build_worker(config, queue, Litestar(logging_config=None))
    await queue.enqueue_many([("noop", {"timeout": 10})] * jobs)  # SAQ's default timeout, stated
    started = time.perf_counter()
    run = asyncio.create_task(worker.start())
    await asyncio.wait_for(done.wait(), timeout=300)
    while await queue.count("active"):  # the last results are being written
        await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - started
    await worker.stop()
    await run
    return jobs / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("saq").setLevel(logging.ERROR)  # its stop warns about the idle dequeue slots
    logging.getLogger("litestar_saq").setLevel(logging.WARNING)
    kinds = ("raw", "plugin")
    labels = {"raw": "raw SAQ Worker, MemoryQueue", "plugin": "plugin worker, MemoryQueue"}
    rates: dict[str, list[float]] = {kind: [] for kind in kinds}
    for kind in kinds:
        await drain(kind, 1000, args.concurrency)  # warm up
    for round_number in range(args.rounds):
        shift = round_number % len(kinds)
        for kind in kinds[shift:] + kinds[:shift]:
            rates[kind].append(await drain(kind, args.jobs, args.concurrency))
    median = {kind: statistics.median(rates[kind]) for kind in kinds}
    print(
        f"Memory drain, N={args.jobs}, concurrency={args.concurrency}, rounds={args.rounds} (median); "
        f"target {TARGET:,} jobs/s"
    )
    print("| worker | jobs/s | all rounds | target met |")
    print("| --- | ---: | --- | --- |")
    for kind in kinds:
        met = "yes" if median[kind] >= TARGET else "no"
        rounds = ", ".join(f"{rate:,.0f}" for rate in rates[kind])
        print(f"| {labels[kind]} | {median[kind]:,.0f} | {rounds} | {met} |")


if __name__ == "__main__":
    asyncio.run(main())
