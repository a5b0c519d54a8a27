"""``AsyncpgQueue`` behind a real pgbouncer in transaction pooling mode (``listen_dsn`` goes direct).

The contract suite runs on this setup too (backend ``asyncpg-pgbouncer``); here: thousands of jobs by
two workers each run exactly once, and the sweep lock lives on the direct connection, one holder at a time.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import asyncpg
from saq.job import Status

from tests.support.brokers import DATABASE_URL, make_pgbouncer_queue, purge_postgres
from tests.support.poll import wait_until
from tests.support.workers import running_worker

JOBS = 5000


async def test_5000_jobs_run_exactly_once_through_pgbouncer(queue_name: str) -> None:
    runs: collections.Counter[str] = collections.Counter()

    async def record(ctx: Any, *, n: int) -> int:
        runs[ctx["job"].key] += 1
        return n

    enqueuer, first, second = [await make_pgbouncer_queue(queue_name) for _ in range(3)]
    try:
        async with (
            running_worker(first, [("record", record)], concurrency=10),
            running_worker(second, [("record", record)], concurrency=10),
        ):
            for start in range(0, JOBS, 250):
                batch = [enqueuer.enqueue("record", n=n, key=f"j{n}") for n in range(start, start + 250)]
                assert all(await asyncio.gather(*batch))
            await wait_until(lambda: sum(runs.values()) >= JOBS, timeout=90, what=f"{JOBS} jobs to run")
            await wait_until(
                lambda: _complete(queue_name), timeout=30, what="every job to be recorded complete"
            )
        assert len(runs) == JOBS
        assert set(runs.values()) == {1}, [key for key, count in runs.items() if count > 1][:10]
    finally:
        for queue in (enqueuer, first, second):
            await queue.disconnect()
        await purge_postgres(enqueuer)


async def _complete(queue_name: str) -> bool:
    connection = await asyncpg.connect(DATABASE_URL)
    try:
        done = await connection.fetchval(
            "SELECT count(*) FROM saq_jobs WHERE queue = $1 AND status = $2", queue_name, Status.COMPLETE
        )
    finally:
        await connection.close()
    return bool(done == JOBS)


async def test_sweep_lock_is_held_on_the_direct_connection_by_one_queue(queue_name: str) -> None:
    queues = [await make_pgbouncer_queue(queue_name) for _ in range(2)]
    try:
        for queue in queues:
            await queue.sweep()
        lock_connections = [getattr(queue, "_sweep_lock")._connection for queue in queues]  # noqa: B009
        held = [connection for connection in lock_connections if connection is not None]
        assert len(held) == 1, "exactly one queue holds the sweep lock"
        direct = await asyncpg.connect(DATABASE_URL)
        try:
            # The holder's backend is the one the queue's own connection talks to (not a pgbouncer server
            # connection that the next transaction of someone else could land on).
            holder_pid = await direct.fetchval(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = hashtext($1)::oid",
                queue_name,
            )
            assert holder_pid == held[0].get_server_pid()
        finally:
            await direct.close()
        for queue in queues:
            await queue.disconnect()
        queues = []
        released = await asyncpg.connect(DATABASE_URL)
        try:
            left = await released.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = hashtext($1)::oid",
                queue_name,
            )
        finally:
            await released.close()
        assert left == 0
    finally:
        for queue in queues:
            await queue.disconnect()
