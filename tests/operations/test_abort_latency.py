"""Abort a running job: it is cancelled within a second, ends ``aborted``, is not retried, and the worker
goes on taking jobs — on every backend, in-process (here) and in a ``--process`` child
(``test_ops_cli.py`` aborts through the CLI)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from litestar import Litestar
from saq.job import Status

from litestar_saq.config import QueueConfig
from litestar_saq.worker_group import build_worker
from tests.support.brokers import backend_queue
from tests.support.poll import wait_until

ABORT_WITHIN_S = 1.0


@pytest.mark.parametrize("backend", ["redis", "asyncpg", "memory"])
@pytest.mark.parametrize("how", ["queue.abort", "job.abort"])
async def test_running_job_is_cancelled_within_a_second(backend: str, how: str, queue_name: str) -> None:
    cancelled_at: dict[str, float] = {}
    starts: list[str] = []
    started = asyncio.Event()

    async def hang(ctx: dict[str, Any]) -> None:
        starts.append(ctx["job"].key)
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled_at[ctx["job"].key] = time.monotonic()
            raise

    async def noop(ctx: dict[str, Any]) -> str:
        return "ok"

    async with backend_queue(backend, queue_name) as queue:
        queue_config = QueueConfig(
            name=queue_name, broker_instance=queue, tasks=[("hang", hang), ("noop", noop)], concurrency=2
        )
        worker = build_worker(queue_config, queue, Litestar())
        runner = asyncio.create_task(worker.start())
        try:
            latencies = []
            for attempt in range(3):  # the abort lands at a different point of the check cycle each time
                started.clear()
                job = await queue.enqueue("hang", key=f"hang-{attempt}", timeout=0, retries=3)
                assert job is not None
                await wait_until(started.is_set, timeout=10, what="the job to start")
                if attempt:
                    await asyncio.sleep(0.1 * attempt)  # what the test is about: aborts at other moments
                asked_at = time.monotonic()
                if how == "job.abort":
                    await job.abort("stop it")
                else:
                    await queue.abort(job, "stop it")

                async def aborted(key: str = job.key) -> bool:
                    stored = await queue.job(key)
                    return stored is not None and stored.status == Status.ABORTED

                await wait_until(aborted, timeout=5, what="the job to be recorded aborted")
                assert job.key in cancelled_at, "the job's task was not cancelled"
                latencies.append(cancelled_at[job.key] - asked_at)
            assert max(latencies) < ABORT_WITHIN_S, f"abort latencies {latencies}"
            # The worker keeps working, and no aborted job came back (it would be queued before this one).
            after = await queue.apply("noop", timeout=10)
            assert after == "ok"
            assert starts == ["hang-0", "hang-1", "hang-2"], "an aborted job is not retried"
            for key in starts:
                stored = await queue.job(key)
                assert stored is not None and stored.status == Status.ABORTED
            print(f"abort latencies on {backend} ({how}): {[round(s, 3) for s in latencies]}")
        finally:
            await worker.stop()
            await runner
