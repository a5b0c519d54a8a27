"""The systems benchmarks/peers.py compares, each behind the same small interface.

arq pins redis<6, so it runs in an interpreter of its own (``.venv-arq``, see ``arq_peer.py``): its
system measures a whole round there (``measure_elsewhere``) and reports the same figures.

A system enqueues the no-op job one by one and (when it can) in bulk, and runs a worker that calls
``on_start()`` on the first line of every job. SAQ-style queues (SAQ's Redis and psycopg queues, ours)
are all driven by the same raw SAQ ``Worker``; pgqueuer runs its ``QueueManager`` (asyncpg, batch 10),
streaq its own ``Worker``. pgqueuer and streaq live in the ``bench`` dependency group.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from saq import Worker
from saq.queue.redis import RedisQueue as SAQRedisQueue

from benchmarks.bench_postgres import asyncpg_factory, psycopg_factory
from litestar_saq.backends.redis import RedisQueue
from litestar_saq.worker import PluginWorker

OURS_REDIS = "our RedisQueue + PluginWorker"
OURS_POSTGRES = "our AsyncpgQueue + PluginWorker"
"""What the plugin runs on each broker; ``run_all.py`` compares these with every peer."""
SETTLE_POLL_S = 0.005
"""How often every PostgreSQL system's ``settled`` polls (the same for all: each poll is a commit)."""


class SAQStyle:
    """A SAQ ``Queue`` (ours or SAQ's) driven by a raw SAQ ``Worker`` (or ``worker_class``)."""

    def __init__(
        self, name: str, broker: str, make: Callable[[], Any], bulk: bool, worker_class: Any = Worker
    ) -> None:
        self.name, self.broker, self.make, self.bulk = name, broker, make, bulk
        self.worker_class = worker_class
        self.queue: Any = None
        self.worker: Any = None
        self.polls = 0
        self.run: asyncio.Task[Any] | None = None

    async def open(self) -> None:
        self.queue = self.make()
        await self.queue.connect()

    async def close(self) -> None:
        if hasattr(self.queue, "redis"):
            keys = [key async for key in self.queue.redis.scan_iter(match=f"saq:*{self.queue.name}*")]
            if keys:
                await self.queue.redis.delete(*keys)
        else:
            pool = getattr(self.queue, "_pool", None) or self.queue.pool  # benchmark clean-up only
            async with pool.connection() as connection:
                await connection.execute("DELETE FROM saq_jobs")
        await self.queue.disconnect()

    async def flush(self) -> None:
        """Close the PostgreSQL connections so their backends flush commit statistics."""
        if self.broker == "postgres":
            await self.queue.disconnect()
            self.queue = self.make()
            await self.queue.connect()

    async def enqueue_one(self) -> None:
        await self.queue.enqueue("noop", ttl=-1)

    async def enqueue_bulk(self, jobs: int) -> None:
        if self.bulk:
            await self.queue.enqueue_many(["noop"] * jobs)
            return
        for start in range(0, jobs, 200):
            await asyncio.gather(*(self.enqueue_one() for _ in range(start, min(jobs, start + 200))))

    async def start_worker(self, on_start: Callable[[], None], concurrency: int) -> None:
        async def noop(_ctx: Any) -> None:
            on_start()

        self.worker = self.worker_class(self.queue, [("noop", noop)], concurrency=concurrency)
        self.worker.SIGNALS = []
        self.run = asyncio.create_task(self.worker.start())

    async def settled(self) -> None:
        """Wait until no job is left; every poll is one PostgreSQL commit, counted in ``polls``."""
        while await self.queue.count("incomplete"):
            self.polls += 1
            await asyncio.sleep(SETTLE_POLL_S)
        self.polls += 1

    async def stop_worker(self) -> None:
        await self.worker.stop()
        assert self.run is not None
        await self.run


class PgQueuer:
    """pgqueuer 1.x on asyncpg: its tables in the benchmark database, ``QueueManager.run``."""

    name, broker, bulk = "pgqueuer (asyncpg)", "postgres", True

    def __init__(self, url: str) -> None:
        self.url = url
        self.run: asyncio.Task[Any] | None = None
        self.polls = 0

    async def open(self) -> None:
        import asyncpg
        from pgqueuer.db import AsyncpgDriver
        from pgqueuer.queries import Queries

        self.connection = await asyncpg.connect(self.url)
        self.queries = Queries(AsyncpgDriver(self.connection))
        with contextlib.suppress(Exception):
            await self.queries.uninstall()
        await self.queries.install()

    async def close(self) -> None:
        await self.queries.uninstall()
        await self.connection.close()

    async def flush(self) -> None:
        import asyncpg
        from pgqueuer.db import AsyncpgDriver
        from pgqueuer.queries import Queries

        await self.connection.close()
        self.connection = await asyncpg.connect(self.url)
        self.queries = Queries(AsyncpgDriver(self.connection))

    async def enqueue_one(self) -> None:
        await self.queries.enqueue("noop", None)

    async def enqueue_bulk(self, jobs: int) -> None:
        await self.queries.enqueue(["noop"] * jobs, [None] * jobs, [0] * jobs)

    async def start_worker(self, on_start: Callable[[], None], concurrency: int) -> None:
        import asyncpg
        from pgqueuer.db import AsyncpgDriver
        from pgqueuer.qm import QueueManager
        from pgqueuer.queries import Queries

        self.worker_connection = await asyncpg.connect(self.url)
        self.manager = QueueManager(Queries(AsyncpgDriver(self.worker_connection)))

        @self.manager.entrypoint("noop")
        async def noop(_job: Any) -> None:
            on_start()

        # As many jobs at once as every other system; pgqueuer wants its cap at least twice its batch.
        self.run = asyncio.create_task(
            self.manager.run(batch_size=max(1, concurrency // 2), max_concurrent_tasks=concurrency)
        )

    async def settled(self) -> None:
        while await self.connection.fetchval("SELECT count(*) FROM pgqueuer"):
            self.polls += 1
            await asyncio.sleep(SETTLE_POLL_S)
        self.polls += 1

    async def stop_worker(self) -> None:
        self.manager.shutdown.set()
        assert self.run is not None
        await self.run
        await self.worker_connection.close()


class Streaq:
    """streaq 7.x on Redis: its own ``Worker`` (anyio on asyncio), queue name of its own."""

    name, broker, bulk = "streaq (Redis)", "redis", True

    def __init__(self, url: str) -> None:
        self.url = url
        self.on_start: Callable[[], None] = lambda: None
        self.run: asyncio.Task[Any] | None = None

    def _worker(self) -> Any:
        from streaq import Worker as StreaqWorker

        worker = StreaqWorker(redis_url=self.url, queue_name=self.queue_name, concurrency=self.concurrency)

        async def noop() -> None:
            self.on_start()

        return worker, worker.task(noop)

    async def open(self) -> None:
        self.queue_name, self.concurrency = f"peers-{uuid.uuid4().hex[:6]}", 20
        self.worker, self.task = self._worker()
        await self.worker.__aenter__()

    async def close(self) -> None:
        keys = [key async for key in self.worker.redis.scan_iter(match=f"*{self.worker.queue_name}*")]
        if keys:
            await self.worker.redis.delete(keys)
        await self.worker.__aexit__(None, None, None)

    async def flush(self) -> None:
        return None

    async def enqueue_one(self) -> None:
        await self.task.enqueue()

    async def enqueue_bulk(self, jobs: int) -> None:
        await self.worker.enqueue_many([self.task.enqueue() for _ in range(jobs)])

    async def start_worker(self, on_start: Callable[[], None], concurrency: int) -> None:
        self.on_start, self.concurrency = on_start, concurrency
        runner, _task = self._worker()
        self.run = asyncio.create_task(runner.run_async())

    async def settled(self) -> None:
        return None

    async def stop_worker(self) -> None:
        assert self.run is not None
        self.run.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.run


class Arq:
    """arq 0.2x with its own ``Worker``, run by ``arq_peer.py`` in ``.venv-arq`` (``$ARQ_PYTHON``)."""

    name, broker, bulk = "arq (Redis)", "redis", False
    python = Path(os.environ.get("ARQ_PYTHON", Path(__file__).resolve().parents[1] / ".venv-arq/bin/python"))

    def __init__(self, url: str) -> None:
        self.url = url

    async def measure_elsewhere(self, jobs: int, latency_jobs: int, concurrency: int) -> dict[str, float]:
        """One round of every figure, measured by ``arq_peer.py`` in arq's own interpreter."""
        script = Path(__file__).resolve().parent / "arq_peer.py"
        process = await asyncio.create_subprocess_exec(
            str(self.python), str(script), "--redis-url", self.url, "--jobs", str(jobs),
            "--latency-jobs", str(latency_jobs), "--concurrency", str(concurrency),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 900)
        if process.returncode != 0:
            raise RuntimeError(f"arq_peer.py failed ({process.returncode}): {err.decode()[-2000:]}")
        results: dict[str, float] = json.loads(out.decode().strip().splitlines()[-1])
        return results


def build(redis_url: str, bench_url: str, which: set[str] | None = None) -> list[Any]:
    def named(factory: Callable[..., Any]) -> Callable[[], Any]:
        return lambda: factory(redis_url, name=f"peers-{uuid.uuid4().hex[:6]}")

    systems: list[Any] = [
        SAQStyle("SAQ RedisQueue", "redis", named(SAQRedisQueue.from_url), False),
        SAQStyle("our RedisQueue", "redis", named(RedisQueue.from_url), True),
        SAQStyle("SAQ PostgresQueue (psycopg)", "postgres", psycopg_factory(bench_url), False),
        SAQStyle("our AsyncpgQueue", "postgres", asyncpg_factory(bench_url), True),
        # What the plugin runs: our queue with our worker (the rows above: SAQ's Worker on our queue).
        SAQStyle(OURS_REDIS, "redis", named(RedisQueue.from_url), True, PluginWorker),
        SAQStyle(OURS_POSTGRES, "postgres", asyncpg_factory(bench_url), True, PluginWorker),
    ]
    with contextlib.suppress(ImportError):
        import pgqueuer  # noqa: F401

        systems.append(PgQueuer(bench_url))
    with contextlib.suppress(ImportError):
        import streaq  # noqa: F401

        systems.append(Streaq(redis_url))
    if Arq.python.exists():
        systems.append(Arq(redis_url))
    else:
        print(f"  note: arq left out: no {Arq.python} (see benchmarks/arq_peer.py)", file=sys.stderr)
    return [system for system in systems if which is None or system.name in which]
