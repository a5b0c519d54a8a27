"""arq, measured with the workload of benchmarks/peers.py, in an interpreter of its own.

    .venv-arq/bin/python benchmarks/arq_peer.py --jobs 3000 --latency-jobs 300 --concurrency 20

arq pins ``redis<6`` and litestar-saq runs on redis 8, so arq cannot share our environment: it lives in
``.venv-arq`` (``python -m venv .venv-arq && .venv-arq/bin/pip install --group bench-arq``) and
``peers.py`` runs this script there, once per round. It imports only arq and the standard library, and
prints one JSON object: ``enqueue`` (one by one, jobs/s), ``drain`` (jobs/s), ``p50``/``p99`` (ms from
before an enqueue to the job's first line, idle worker). arq has no bulk enqueue.

The worker is arq's own ``Worker`` (``max_jobs`` = the concurrency, results not kept, as the SAQ-style
queues enqueue with ``ttl=-1``). arq has no wake-up on enqueue: its idle worker polls Redis every
``poll_delay`` (0.5 s by default); this runs it at 0.01 s so that its latency is its own and not the
default pause.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import statistics
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

POLL_DELAY_S = 0.01
WARMUP_JOBS = 3  # latency jobs run first and not counted, as in peers.py


async def main() -> None:
    from arq import create_pool
    from arq.connections import RedisSettings
    from arq.worker import Worker, func

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--latency-jobs", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    logging.getLogger("arq").setLevel(logging.WARNING)
    url = urlsplit(args.redis_url)
    settings = RedisSettings(
        host=url.hostname or "127.0.0.1", port=url.port or 6379, database=int(url.path.strip("/") or 0)
    )
    queue_name = f"arq-peers-{uuid.uuid4().hex[:6]}"
    pool = await create_pool(settings, default_queue_name=queue_name)
    on_start: list[Any] = [lambda: None]

    async def noop(_ctx: Any) -> None:
        on_start[0]()

    def worker() -> Any:
        return Worker(
            [func(noop, name="noop")],
            redis_pool=pool,
            queue_name=queue_name,
            max_jobs=args.concurrency,
            keep_result=0,
            poll_delay=POLL_DELAY_S,
            handle_signals=False,
        )

    async def stopped(running: asyncio.Task[Any], arq_worker: Any) -> None:
        # arq stops on a signal; here its poll loop is cancelled once the last jobs have finished.
        while any(not task.done() for task in arq_worker.tasks.values()):
            await asyncio.sleep(0.001)
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        with contextlib.suppress(asyncio.CancelledError):  # a job task the cancel reached
            await arq_worker.close()

    job_ids: list[str] = []

    async def enqueue() -> None:
        job = await pool.enqueue_job("noop")
        job_ids.append(job.job_id)

    results: dict[str, float] = {}
    try:
        started = time.perf_counter()
        for _ in range(args.jobs):
            await enqueue()
        results["enqueue"] = args.jobs / (time.perf_counter() - started)
        await pool.delete(queue_name, *(f"arq:job:{job_id}" for job_id in job_ids))

        count, done = [0], asyncio.Event()

        def counted() -> None:
            count[0] += 1
            if count[0] >= args.jobs:
                done.set()

        for _ in range(args.jobs):  # the drain's jobs, enqueued before the worker starts (as peers.py)
            await enqueue()
        on_start[0] = counted
        arq_worker = worker()
        started = time.perf_counter()
        running = asyncio.create_task(arq_worker.async_run())
        await asyncio.wait_for(done.wait(), 300)
        results["drain"] = args.jobs / (time.perf_counter() - started)
        await stopped(running, arq_worker)

        at, begun = [0.0], asyncio.Event()

        def stamp() -> None:
            at[0] = time.perf_counter()
            begun.set()

        on_start[0] = stamp
        arq_worker = worker()
        running = asyncio.create_task(arq_worker.async_run())
        await asyncio.sleep(0.5)  # let the worker reach its idle poll
        samples = []
        for index in range(WARMUP_JOBS + args.latency_jobs):  # the first ones uncounted, as in peers.py
            begun.clear()
            before = time.perf_counter()
            await enqueue()
            await asyncio.wait_for(begun.wait(), 10)
            if index >= WARMUP_JOBS:
                samples.append((at[0] - before) * 1000)
        await stopped(running, arq_worker)
        results["p50"] = statistics.median(samples)
        results["p99"] = statistics.quantiles(samples, n=100)[98]
    finally:
        keys = [queue_name, f"{queue_name}:health-check"]
        for prefix in ("job", "result", "in-progress", "retry"):
            keys += (f"arq:{prefix}:{job_id}" for job_id in job_ids)
        for start in range(0, len(keys), 1000):
            await pool.delete(*keys[start : start + 1000])
        await pool.aclose()
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
