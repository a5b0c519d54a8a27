"""Cost of OpenTelemetry tracing: enqueue and drain on Redis with no plugin, tracing off, tracing on.

    python benchmarks/bench_tracing.py [--jobs 3000] [--concurrency 10] [--rounds 5]

Three setups on the same Redis, alternating their order every round so drift hits all alike:

- ``baseline``: our ``RedisQueue`` and a worker from ``build_worker`` for an app without the plugin;
- ``off``: the plugin's path with ``enable_otel=False`` (``instrument_queue`` + the worker's hooks);
- ``on``: ``enable_otel=True`` with the SDK's ``TracerProvider`` and a ``BatchSpanProcessor`` whose
  exporter drops the spans (what a production setup costs, minus the network).

Enqueues are awaited one at a time (as a request handler does), in blocks of 100 that alternate
between the setups; drains run one setup after the other, in an order that rotates every round. Besides
wall-clock rates it reports this process's CPU time per job, which other load on the machine barely
moves, and the hooks' own cost (µs per call).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import time
import uuid
from collections.abc import Sequence
from typing import Any

from litestar import Litestar
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from saq.job import Job

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin
from litestar_saq.backends.redis import RedisQueue
from litestar_saq.tracing import instrument_queue, worker_hooks
from litestar_saq.worker_group import build_worker

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
SETUPS = ("baseline", "off", "on")


class DroppingExporter(SpanExporter):
    """Counts spans and drops them."""

    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported += len(spans)
        return SpanExportResult.SUCCESS


class Counter:
    def __init__(self, target: int) -> None:
        self.target = target
        self.done = 0
        self.finished = asyncio.Event()

    async def noop(self, ctx: Any) -> None:
        self.done += 1
        if self.done >= self.target:
            self.finished.set()


def app_for(setup: str, queue_config: QueueConfig) -> Litestar:
    if setup == "baseline":
        return Litestar(logging_config=None)
    config = SAQConfig(queue_configs=[queue_config], enable_otel=setup == "on")
    return Litestar(plugins=[SAQPlugin(config)], logging_config=None)


class Setup:
    """One setup's queue, app and accumulated timings (wall and this process's CPU time)."""

    def __init__(self, kind: str, jobs: int, concurrency: int) -> None:
        self.kind = kind
        self.name = f"bench-otel-{kind}-{uuid.uuid4().hex[:6]}"
        self.counter = Counter(jobs)
        self.queue = RedisQueue.from_url(REDIS_URL, name=self.name)
        self.queue_config = QueueConfig(
            name=self.name, dsn=REDIS_URL, tasks=[("noop", self.counter.noop)], concurrency=concurrency
        )
        self.app = app_for(kind, self.queue_config)
        self.enqueue_wall = self.enqueue_cpu = 0.0

    async def connect(self) -> None:
        await self.queue.connect()
        if self.kind != "baseline":
            instrument_queue(self.queue, self.app.plugins.get(SAQPlugin).config)

    async def enqueue_block(self, size: int) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(size):
            await self.queue.enqueue("noop")
        self.enqueue_wall += time.perf_counter() - wall
        self.enqueue_cpu += time.process_time() - cpu

    async def drain(self) -> tuple[float, float]:
        """Run a worker until every job ran; returns (wall seconds, CPU seconds)."""
        config = None if self.kind == "baseline" else self.app.plugins.get(SAQPlugin).config
        worker = build_worker(self.queue_config, self.queue, self.app, config=config)
        wall, cpu = time.perf_counter(), time.process_time()
        run = asyncio.create_task(worker.start())
        await asyncio.wait_for(self.counter.finished.wait(), timeout=300)
        while await self.queue.count("active"):  # the last results are being written
            await asyncio.sleep(0.001)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        await worker.stop()
        await run
        return wall, cpu

    async def close(self) -> None:
        keys = [key async for key in self.queue.redis.scan_iter(match=f"saq:*{self.name}*")]
        if keys:
            await self.queue.redis.delete(*keys)
        await self.queue.disconnect()


async def run_round(jobs: int, concurrency: int, round_number: int) -> dict[str, dict[str, float]]:
    """Enqueue ``jobs`` per setup in interleaved blocks, then drain each; rates and CPU µs per job."""
    shift = round_number % len(SETUPS)
    order = SETUPS[shift:] + SETUPS[:shift]
    setups = {kind: Setup(kind, jobs, concurrency) for kind in order}
    for setup in setups.values():
        await setup.connect()
    block = 100
    for start in range(0, jobs, block):
        for kind in order:
            await setups[kind].enqueue_block(min(block, jobs - start))
    results: dict[str, dict[str, float]] = {}
    for kind in order:
        setup = setups[kind]
        drain_wall, drain_cpu = await setup.drain()
        results[kind] = {
            "enqueue_rate": jobs / setup.enqueue_wall,
            "enqueue_cpu_us": setup.enqueue_cpu / jobs * 1e6,
            "drain_rate": jobs / drain_wall,
            "drain_cpu_us": drain_cpu / jobs * 1e6,
        }
        await setup.close()
    return results


async def hook_costs(calls: int) -> dict[str, float]:
    """Microseconds per call of the producer hook and of the pair of consumer hooks (tracing on)."""
    queue = RedisQueue.from_url(REDIS_URL, name="bench-otel-hooks")
    instrument_queue(queue, SAQConfig(enable_otel=True))
    producer = next(iter(queue._before_enqueues.values()))
    hooks = worker_hooks(SAQConfig(enable_otel=True))
    [start], [end] = hooks["before_process"], hooks["after_process"]
    jobs = [Job("noop", queue=queue) for _ in range(calls)]
    started = time.perf_counter()
    for job in jobs:
        await producer(job)
    producer_us = (time.perf_counter() - started) / calls * 1e6
    started = time.perf_counter()
    for job in jobs:
        ctx: dict[str, Any] = {"job": job}
        await start(ctx)
        await end(ctx)
    consumer_us = (time.perf_counter() - started) / calls * 1e6
    await queue.redis.aclose()
    return {"producer": producer_us, "consumer": consumer_us}


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    logging.getLogger("saq").setLevel(logging.WARNING)
    exporter = DroppingExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=65536))
    trace.set_tracer_provider(provider)

    metrics = ("enqueue_rate", "enqueue_cpu_us", "drain_rate", "drain_cpu_us")
    samples: dict[str, dict[str, list[float]]] = {kind: {metric: [] for metric in metrics} for kind in SETUPS}
    await run_round(300, args.concurrency, 0)  # warm up Redis, the interpreter and the SDK
    for round_number in range(args.rounds):
        for kind, values in (await run_round(args.jobs, args.concurrency, round_number)).items():
            for metric, value in values.items():
                samples[kind][metric].append(value)
    costs = await hook_costs(20_000)
    provider.shutdown()

    median = {
        kind: {metric: statistics.median(samples[kind][metric]) for metric in metrics} for kind in SETUPS
    }
    base = median["baseline"]
    print(
        f"Tracing cost, Redis, N={args.jobs} per setup, concurrency={args.concurrency}, "
        f"rounds={args.rounds} (medians; CPU = this process's CPU time per job)"
    )
    print("| setup | enqueue /s | CPU µs per enqueue | drain /s | CPU µs per job run |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for kind in SETUPS:
        row = median[kind]
        print(
            f"| {kind} | {row['enqueue_rate']:,.0f} ({row['enqueue_rate'] / base['enqueue_rate']:.2f}x) "
            f"| {row['enqueue_cpu_us']:.0f} ({row['enqueue_cpu_us'] - base['enqueue_cpu_us']:+.0f}) "
            f"| {row['drain_rate']:,.0f} ({row['drain_rate'] / base['drain_rate']:.2f}x) "
            f"| {row['drain_cpu_us']:.0f} ({row['drain_cpu_us'] - base['drain_cpu_us']:+.0f}) |"
        )
    print(
        f"hooks alone (tracing on): producer {costs['producer']:.1f} µs/enqueue, "
        f"consumer start+end {costs['consumer']:.1f} µs/job; spans exported: {exporter.exported:,}"
    )


if __name__ == "__main__":
    asyncio.run(main())
