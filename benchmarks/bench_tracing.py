"""Cost of OpenTelemetry tracing: enqueue and drain on Redis with no plugin, tracing off, tracing on.

    python benchmarks/bench_tracing.py [--jobs 3000] [--concurrency 10] [--rounds 5]

Three setups on the same Redis, alternating their order every round so drift hits all alike:

- ``baseline``: our ``RedisQueue`` and a worker from ``build_worker`` for an app without the plugin;
- ``off``: the plugin's path with ``enable_otel=False`` (``instrument_queue`` + the worker's hooks);
- ``on``: ``enable_otel=True`` with the SDK's ``TracerProvider`` and a ``BatchSpanProcessor`` whose
  exporter drops the spans (what a production setup costs, minus the network).

Enqueue is timed one job at a time (each awaited, as a request handler does), drain as in R1. It
also times the hooks alone (µs per call), which is steadier than the end-to-end rates.
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
from litestar_saq.worker import build_worker

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


async def run_round(setup: str, jobs: int, concurrency: int) -> tuple[float, float]:
    """Enqueue ``jobs`` one by one, then drain them; returns (enqueue/s, drain/s)."""
    name = f"bench-otel-{setup}-{uuid.uuid4().hex[:6]}"
    counter = Counter(jobs)
    queue = RedisQueue.from_url(REDIS_URL, name=name)
    await queue.connect()
    queue_config = QueueConfig(
        name=name, dsn=REDIS_URL, tasks=[("noop", counter.noop)], concurrency=concurrency
    )
    app = app_for(setup, queue_config)
    if setup != "baseline":
        instrument_queue(queue, app.plugins.get(SAQPlugin).config)
    started = time.perf_counter()
    for _ in range(jobs):
        await queue.enqueue("noop")
    enqueue_rate = jobs / (time.perf_counter() - started)
    worker = build_worker(queue_config, queue, app)
    started = time.perf_counter()
    run = asyncio.create_task(worker.start())
    await asyncio.wait_for(counter.finished.wait(), timeout=300)
    while await queue.count("active"):  # the last results are being written
        await asyncio.sleep(0.001)
    drain_rate = jobs / (time.perf_counter() - started)
    await worker.stop()
    await run
    keys = [key async for key in queue.redis.scan_iter(match=f"saq:*{name}*")]
    if keys:
        await queue.redis.delete(*keys)
    await queue.disconnect()
    return enqueue_rate, drain_rate


async def hook_costs(calls: int) -> dict[str, float]:
    """Microseconds per call of the producer hook and of the pair of consumer hooks (tracing on)."""
    queue = RedisQueue.from_url(REDIS_URL, name="bench-otel-hooks")
    instrument_queue(queue, SAQConfig(enable_otel=True))
    producer = next(iter(queue._before_enqueues.values()))
    app = Litestar(plugins=[SAQPlugin(SAQConfig(enable_otel=True))], logging_config=None)
    hooks = worker_hooks(app)
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

    enqueue: dict[str, list[float]] = {setup: [] for setup in SETUPS}
    drain: dict[str, list[float]] = {setup: [] for setup in SETUPS}
    await run_round("on", 300, args.concurrency)  # warm up Redis, the interpreter and the SDK
    for round_number in range(args.rounds):
        shift = round_number % len(SETUPS)
        for setup in SETUPS[shift:] + SETUPS[:shift]:
            enqueue_rate, drain_rate = await run_round(setup, args.jobs, args.concurrency)
            enqueue[setup].append(enqueue_rate)
            drain[setup].append(drain_rate)
    costs = await hook_costs(20_000)
    provider.shutdown()

    print(
        f"Tracing cost, Redis, N={args.jobs}, concurrency={args.concurrency}, rounds={args.rounds} (median)"
    )
    print("| setup | enqueue one by one /s | vs baseline | drain /s | vs baseline |")
    print("| --- | ---: | ---: | ---: | ---: |")
    base_enqueue, base_drain = statistics.median(enqueue["baseline"]), statistics.median(drain["baseline"])
    for setup in SETUPS:
        setup_enqueue, setup_drain = statistics.median(enqueue[setup]), statistics.median(drain[setup])
        print(
            f"| {setup} | {setup_enqueue:,.0f} | {setup_enqueue / base_enqueue:.3f} "
            f"| {setup_drain:,.0f} | {setup_drain / base_drain:.3f} |"
        )
    print(
        f"hooks alone (tracing on): producer {costs['producer']:.1f} µs/enqueue, "
        f"consumer start+end {costs['consumer']:.1f} µs/job; spans exported: {exporter.exported:,}"
    )


if __name__ == "__main__":
    asyncio.run(main())
