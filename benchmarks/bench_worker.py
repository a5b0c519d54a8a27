"""R1: the plugin's worker vs a raw SAQ worker, draining the same no-op jobs from the same Redis.

    python benchmarks/bench_worker.py [--jobs 5000] [--concurrency 10] [--rounds 5]

Three contestants: a raw SAQ ``Worker`` on SAQ's own ``RedisQueue`` (``saq``), a raw SAQ ``Worker`` on
our ``RedisQueue`` (``raw``), and the plugin's worker from ``build_worker`` on our ``RedisQueue``
(``plugin``). Each round enqueues N jobs per contestant, then times one worker draining them; the
order rotates every round so that drift on the machine affects all alike. Prints the median rates
and the ratios plugin/raw (same queue class) and plugin/saq.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import time
import uuid
from typing import Any

from litestar import Litestar
from saq import Worker
from saq.queue.redis import RedisQueue as SAQRedisQueue

from litestar_saq import QueueConfig
from litestar_saq.backends.redis import RedisQueue
from litestar_saq.worker_group import build_worker

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


class Counter:
    def __init__(self, target: int) -> None:
        self.target = target
        self.done = 0
        self.finished = asyncio.Event()

    async def noop(self, ctx: Any) -> None:
        self.done += 1
        if self.done >= self.target:
            self.finished.set()


async def enqueue_all(queue: Any, jobs: int) -> None:
    batch = 200
    for start in range(0, jobs, batch):
        await asyncio.gather(*(queue.enqueue("noop") for _ in range(start, min(jobs, start + batch))))


async def drain(kind: str, jobs: int, concurrency: int) -> float:
    name = f"bench-{kind}-{uuid.uuid4().hex[:6]}"
    counter = Counter(jobs)
    if kind in ("saq", "raw"):
        queue_class: Any = SAQRedisQueue if kind == "saq" else RedisQueue
        queue: Any = queue_class.from_url(REDIS_URL, name=name)
        await queue.connect()
        worker: Any = Worker(queue, [("noop", counter.noop)], concurrency=concurrency)
        worker.SIGNALS = []
    else:
        queue = RedisQueue.from_url(REDIS_URL, name=name)
        await queue.connect()
        config = QueueConfig(
            name=name, dsn=REDIS_URL, tasks=[("noop", counter.noop)], concurrency=concurrency
        )
        worker = build_worker(config, queue, Litestar(logging_config=None))
    await enqueue_all(queue, jobs)
    started = time.perf_counter()
    run = asyncio.create_task(worker.start())
    await asyncio.wait_for(counter.finished.wait(), timeout=300)
    while await queue.count("active"):  # the last results are being written
        await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - started
    await worker.stop()
    await run
    keys = [key async for key in queue.redis.scan_iter(match=f"saq:*{name}*")]
    if keys:
        await queue.redis.delete(*keys)
    await queue.disconnect()
    return jobs / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    # SAQ logs every job at INFO; both workers run with it silenced so logging does not dominate.
    logging.getLogger("saq").setLevel(logging.WARNING)
    kinds = ("saq", "raw", "plugin")
    labels = {
        "saq": "raw SAQ Worker, SAQ's RedisQueue",
        "raw": "raw SAQ Worker, our RedisQueue",
        "plugin": "plugin worker, our RedisQueue",
    }
    rates: dict[str, list[float]] = {kind: [] for kind in kinds}
    for kind in kinds:
        await drain(kind, 500, args.concurrency)  # warm up Redis and the interpreter
    for round_number in range(args.rounds):
        shift = round_number % len(kinds)
        for kind in kinds[shift:] + kinds[:shift]:
            rates[kind].append(await drain(kind, args.jobs, args.concurrency))
    median = {kind: statistics.median(rates[kind]) for kind in kinds}
    print(f"R1 drain, Redis, N={args.jobs}, concurrency={args.concurrency}, rounds={args.rounds} (median)")
    print("| worker | jobs/s | all rounds |")
    print("| --- | ---: | --- |")
    for kind in kinds:
        print(f"| {labels[kind]} | {median[kind]:,.0f} | {', '.join(f'{r:,.0f}' for r in rates[kind])} |")
    print(f"| ratio plugin/raw (same queue class) | {median['plugin'] / median['raw']:.3f} | |")
    print(f"| ratio plugin/saq (SAQ's queue) | {median['plugin'] / median['saq']:.3f} | |")


if __name__ == "__main__":
    asyncio.run(main())
