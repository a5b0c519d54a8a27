"""A fleet run: three hosts (``tests.support.fleet``) running ``workers run --process --workers 2`` of
``apps/fleet_app.py`` against a broker of the run's own (``tests.support.fleet_servers``).

Used by ``tests/fleet/`` and ``benchmarks/bench_fleet.py``::

    async with FleetRun("postgres", log_dir) as fleet:
        fleet.start_hosts()
        await fleet.wait_for_workers()
        await fleet.enqueue([f"{fleet.queue_name}-{n}" for n in range(100)])
        runs = await fleet.runs()           # every run the task recorded: key, host, attempt, ...

Everything it started (servers, namespaces, processes, temporary directories) is gone after the block,
whatever happened in it.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from redis.asyncio import Redis
from saq.job import Status

from litestar_saq.brokers import queue_from_dsn
from tests.fleet.apps.fleet_app import WORKER_INFO_S
from tests.support.fleet import FleetNetwork
from tests.support.fleet_servers import FleetPostgres, FleetRedis
from tests.support.poll import wait_until

__all__ = ("APP", "WORKER_INFO_S", "FleetRun", "Run", "new_keys")

APP = "tests.fleet.apps.fleet_app:app"
BATCH = 1000


@dataclass(frozen=True)
class Run:
    """One run of a job, as the task recorded it when it started."""

    key: str
    host: str
    attempt: int
    worker_id: str
    started: float


class FleetRun:
    """Network, broker, hosts and a root-side queue for one fleet test; an async context manager.

    Args:
        broker: ``"redis"`` or ``"postgres"``.
        log_dir: where each host's output goes (``<host>.log``).
        hosts: how many hosts.
        grace_s: the queue's ``orphan_grace_s`` on the hosts.
    """

    def __init__(self, broker: str, log_dir: Path, hosts: int = 3, grace_s: float = 3.0) -> None:
        self.broker = broker
        self.log_dir = log_dir
        self.grace_s = grace_s
        self.network = FleetNetwork(hosts)
        self.queue_name = f"fleet-{self.network.run_id}"
        self.runs_name = f"runs_{self.network.run_id}"
        self.server: FleetRedis | FleetPostgres | None = None
        self.queue: Any = None
        self._completes: Counter[str] = Counter()
        self._watch: asyncio.Task[None] | None = None

    @property
    def hosts(self) -> list[Any]:
        return self.network.hosts

    async def __aenter__(self) -> FleetRun:
        try:
            self.network.open()
            server_class = FleetRedis if self.broker == "redis" else FleetPostgres
            self.server = server_class(self.network.broker_address)
            await asyncio.to_thread(self.server.start)
            if self.broker == "postgres":
                await self._prepare_postgres()
            self.queue = queue_from_dsn(self.server.url(), name=self.queue_name)
            await self.queue.connect()
            if self.broker == "redis":
                subscribed = asyncio.Event()
                self._watch = asyncio.create_task(self._count_redis_completes(subscribed))
                await asyncio.wait_for(subscribed.wait(), timeout=10)
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
        if self.queue is not None:
            await self.queue.disconnect()
            self.queue = None
        self.network.close()
        if self.server is not None:
            self.server.stop()

    # -- hosts -----------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        assert self.server is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "LITESTAR_", "FLEET_"))}
        env.update(
            FLEET_DSN=self.server.url(self.network.broker_address),
            FLEET_QUEUE=self.queue_name,
            FLEET_RUNS=self.runs_name,
            FLEET_GRACE=str(self.grace_s),
            PYTHONUNBUFFERED="1",
            PYTHONFAULTHANDLER="1",
            LITESTAR_QUIET_CONSOLE="1",
        )
        return env

    def start_hosts(self) -> None:
        for host in self.hosts:
            host.start_workers(APP, self.env(), self.log_dir / f"{host.name}.log")

    async def wait_for_workers(self, count: int | None = None, timeout: float = 60) -> None:
        """Wait until ``count`` workers (default: two per host) have written their stats."""
        wanted = 2 * len(self.hosts) if count is None else count

        async def enough() -> bool:
            return len((await self.queue.info())["workers"]) >= wanted

        await wait_until(enough, timeout=timeout, interval=0.2, what=self._described(f"{wanted} workers"))

    async def live_workers_on(self, host: Any, count: int = 2) -> bool:
        """Whether ``count`` workers of ``host`` have fresh stats."""
        workers = (await self.queue.info())["workers"].values()
        return sum((worker["metadata"] or {}).get("host") == host.name for worker in workers) >= count

    def _described(self, what: str) -> Any:
        def describe() -> str:
            logs = "\n".join(f"--- {host.name}\n{host.log()[-1500:]}" for host in self.hosts)
            return f"{what}; host logs:\n{logs}"

        return describe

    # -- jobs ------------------------------------------------------------------------------------
    async def enqueue(self, keys: list[str], **job_options: Any) -> None:
        """Enqueue ``record_run`` once per key (keys of this run: SAQ's PostgreSQL table is keyed by key)."""
        for start in range(0, len(keys), BATCH):
            items = [("record_run", {"key": key, **job_options}) for key in keys[start : start + BATCH]]
            stored = await self.queue.enqueue_many(items)
            assert None not in stored, "every key is new, so every enqueue stores a job"

    async def runs(self) -> list[Run]:
        """Every run recorded so far, in no particular order."""
        if self.broker == "postgres":
            async with self.queue.pool.acquire() as connection:
                rows = await connection.fetch(
                    f'SELECT key, host, attempt, worker_id, started FROM "{self.runs_name}"'
                )
            return [Run(*row) for row in rows]
        raw = await self.queue.redis.lrange(self.runs_name, 0, -1)
        return [Run(*json.loads(item)) for item in raw]

    async def wait_until_complete(self, keys: list[str], timeout: float) -> None:
        """Wait until every job of ``keys`` is complete."""
        remaining = set(keys)

        async def all_complete() -> bool:
            for start in range(0, len(remaining), BATCH):
                batch = sorted(remaining)[start : start + BATCH]
                for key, job in zip(batch, await self.queue.jobs(batch), strict=True):
                    if job is not None and job.status == Status.COMPLETE:
                        remaining.discard(key)
            return not remaining

        await wait_until(
            all_complete,
            timeout=timeout,
            interval=0.5,
            what=self._described(f"all {len(keys)} jobs to complete ({len(remaining)} left)"),
        )

    async def complete_writes(self) -> Counter[str]:
        """How many times each job was written as complete (a late finish of a job taken back counts)."""
        if self.broker == "postgres":
            async with self.queue.pool.acquire() as connection:
                rows = await connection.fetch(
                    f'SELECT key, count(*) FROM "{self.runs_name}_completes" GROUP BY key'
                )
            return Counter({row[0]: row[1] for row in rows})
        return Counter(self._completes)

    async def sweep_lock_holder(self) -> Any:
        """The host whose session holds the queue's sweep lock (PostgreSQL), or ``None``."""
        assert self.broker == "postgres"
        async with self.queue.pool.acquire() as connection:
            address = await connection.fetchval(
                """SELECT host(a.client_addr) FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid
                   WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND l.objid <> 0"""
            )
        return next((host for host in self.hosts if host.address == address), None)

    async def complete_writes_of(self, key: str) -> list[str]:
        """What each complete write of ``key`` stored (PostgreSQL; on Redis only the count is known)."""
        if self.broker != "postgres":
            return [f"{self._completes[key]} complete statuses published"]
        async with self.queue.pool.acquire() as connection:
            rows = await connection.fetch(
                f'SELECT old_status, job FROM "{self.runs_name}_completes" WHERE key = $1', key
            )
        return [f"was {row[0]}: {row[1]}" for row in rows]

    # -- broker specifics ------------------------------------------------------------------------
    async def _prepare_postgres(self) -> None:
        """The runs table, and a trigger counting every write of a job as complete (the SAQ tables are
        made by a throwaway queue first, so the trigger exists before any worker starts)."""
        assert self.server is not None
        setup = queue_from_dsn(self.server.url(), name=f"{self.queue_name}-setup")
        await setup.connect()
        await setup.disconnect()
        connection = await asyncpg.connect(self.server.url())
        try:
            await connection.execute(
                f"""
                CREATE TABLE "{self.runs_name}" (key TEXT, host TEXT, attempt INT, worker_id TEXT,
                    started DOUBLE PRECISION);
                CREATE TABLE "{self.runs_name}_completes" (key TEXT, old_status TEXT, job TEXT);
                CREATE FUNCTION count_complete() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    INSERT INTO "{self.runs_name}_completes"
                    VALUES (NEW.key, OLD.status, convert_from(NEW.job, 'UTF8'));
                    RETURN NEW;
                END $$;
                CREATE TRIGGER count_complete AFTER UPDATE ON saq_jobs FOR EACH ROW
                    WHEN (NEW.status = 'complete') EXECUTE FUNCTION count_complete();
                """
            )
        finally:
            await connection.close()

    async def _count_redis_completes(self, subscribed: asyncio.Event) -> None:
        """Count the ``complete`` statuses a finish publishes on each job's channel."""
        assert self.server is not None
        client = Redis.from_url(self.server.url())
        prefix = f"saq:job:{self.queue_name}:"
        try:
            async with client.pubsub() as pubsub:
                await pubsub.psubscribe(prefix + "*")
                subscribed.set()
                async for message in pubsub.listen():
                    if message["type"] == "pmessage" and message["data"] == b"complete":
                        self._completes[message["channel"].decode()[len(prefix) :]] += 1
        finally:
            await client.aclose()


def new_keys(fleet: FleetRun, label: str, count: int) -> list[str]:
    """``count`` job keys of this run, unique per label."""
    tag = uuid.uuid4().hex[:4]
    return [f"{fleet.queue_name}-{label}{tag}-{n}" for n in range(count)]
