"""Issue 16: what task handles and dependency injection cost.

    python benchmarks/bench_tasks.py [--backend redis|memory] [--enqueues 2000] [--jobs 2000] [--rounds 7]

- enqueue: ``await handle.enqueue(a=1)`` vs ``await queue.enqueue("add", a=1)`` on the same started app
  and queue (both go through the queue's job defaults; the handle adds finding its queue). Target: the
  handle's time per enqueue <= 1.05x the queue's.
- drain: N jobs of a task with two injected dependencies (a sync provider and an async one that asks
  for ``state`` and ``job``) vs N jobs of the same task without parameters to inject, drained by one
  worker (concurrency 10). Target: the injected task's jobs/s >= 0.9x the plain one's.

Rounds interleave the two contestants (the order alternates), and the medians are compared, so drift
on the machine affects both alike.
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
from litestar.datastructures import State
from saq.job import Job

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin, TaskContext, injected, task
from litestar_saq.testing import drain, running_app

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@task
async def add(ctx: TaskContext, *, a: int) -> int:
    return a


@task
async def plain(ctx: TaskContext, *, n: int) -> int:
    return n


def provide_settings() -> dict[str, int]:
    return {"factor": 2}


async def provide_client(state: State, job: Job) -> str:
    return f"{state.client_name}:{job.key}"


@task
async def with_two_dependencies(
    ctx: TaskContext, *, n: int, settings: dict[str, int] = injected(), client: str = injected()
) -> int:
    return n


def build_app(dsn: str, queue_name: str) -> Litestar:
    def open_client(app: Litestar) -> None:
        app.state.client_name = "client"

    config = SAQConfig(
        dependencies={"settings": provide_settings, "client": provide_client},
        queue_configs=[
            QueueConfig(
                name=queue_name,
                dsn=dsn,
                tasks=[add, plain, with_two_dependencies],
                job_defaults={"timeout": 30},
                separate_process=dsn != "memory://",  # drained by testing.drain's own worker
                concurrency=10,
            )
        ],
    )
    return Litestar(plugins=[SAQPlugin(config)], on_startup=[open_client])


async def time_enqueues(app: Litestar, queue_name: str, count: int, by_handle: bool) -> float:
    queue = app.plugins.get(SAQPlugin).task_queues.get(queue_name)
    start = time.perf_counter()
    if by_handle:
        for index in range(count):
            await add.enqueue(a=index)
    else:
        for index in range(count):
            await queue.enqueue("add", a=index)
    elapsed = time.perf_counter() - start
    return elapsed / count


async def time_drain(app: Litestar, queue_name: str, count: int, injected_task: bool) -> float:
    handle = with_two_dependencies if injected_task else plain
    queue = app.plugins.get(SAQPlugin).task_queues.get(queue_name)
    for index in range(count):
        await queue.enqueue(handle.name, n=index)
    start = time.perf_counter()
    await drain(app, timeout=300)
    return count / (time.perf_counter() - start)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["redis", "memory"], default="redis")
    parser.add_argument("--enqueues", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    dsn = REDIS_URL if args.backend == "redis" else "memory://"
    queue_name = f"bench-tasks-{uuid.uuid4().hex[:8]}"
    app = build_app(dsn, queue_name)
    enqueue_times: dict[bool, list[float]] = {True: [], False: []}
    drain_rates: dict[bool, list[float]] = {True: [], False: []}
    async with running_app(app):
        await drain(app, timeout=60)
        for round_number in range(args.rounds):
            order = (True, False) if round_number % 2 else (False, True)
            for by_handle in order:
                enqueue_times[by_handle].append(
                    await time_enqueues(app, queue_name, args.enqueues, by_handle)
                )
                await drain(app, timeout=300)
            for injected_task in order:
                drain_rates[injected_task].append(await time_drain(app, queue_name, args.jobs, injected_task))
        queue: Any = app.plugins.get(SAQPlugin).task_queues.get(queue_name)
        if args.backend == "redis":
            keys = [key async for key in queue.redis.scan_iter(match=f"saq:*{queue_name}*")]
            if keys:
                await queue.redis.delete(*keys)
    handle_us = statistics.median(enqueue_times[True]) * 1e6
    queue_us = statistics.median(enqueue_times[False]) * 1e6
    injected_rate = statistics.median(drain_rates[True])
    plain_rate = statistics.median(drain_rates[False])
    print(f"backend {args.backend}, {args.rounds} interleaved rounds, medians")
    print(
        f"enqueue: handle {handle_us:.1f} us, queue.enqueue('name') {queue_us:.1f} us, "
        f"ratio {handle_us / queue_us:.3f}x (target <= 1.05x)"
    )
    print(
        f"drain: two injected deps {injected_rate:.0f} jobs/s, none {plain_rate:.0f} jobs/s, "
        f"ratio {injected_rate / plain_rate:.3f}x (target >= 0.9x)"
    )


if __name__ == "__main__":
    asyncio.run(main())
