"""AsyncpgQueue under failure: killed connections, held locks, bad addresses, small pools, groups."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from litestar.exceptions import MissingDependencyException
from saq.job import Status

from litestar_saq.backends.asyncpg import AsyncpgQueue
from litestar_saq.backends.asyncpg_listener import channel_name
from litestar_saq.exceptions import BrokerUnavailableError, MigrationLockTimeout
from tests.support.poll import wait_until
from tests.support.workers import running_worker

MakeQueue = Callable[..., Awaitable[AsyncpgQueue]]


async def echo(_ctx: Any, *, a: int) -> int:
    return a


async def listener_pids(database_url: str, channel: str) -> set[int]:
    """Backends whose last statement LISTENed on ``channel``."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE query = $1 AND state = 'idle'", f'LISTEN "{channel}"'
        )
    finally:
        await connection.close()
    return {row[0] for row in rows}


async def sweep_lock_holders(database_url: str, keyspace: int, name: str) -> set[int]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            """SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2
               AND classid::bigint = $1 AND objid::bigint = (hashtext($2)::bigint & 4294967295)""",
            keyspace,
            name,
        )
    finally:
        await connection.close()
    return {row[0] for row in rows}


async def terminate(database_url: str, pid: int) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await connection.close()


async def test_wakeups_resume_after_the_listen_backend_is_killed(
    database_url: str, asyncpg_queues: MakeQueue, queue_name: str
) -> None:
    # The safety-net poll is far away, so only a notification can wake the waiter quickly.
    queue = await asyncpg_queues(fallback_poll_interval=60)
    channel = f"saq:{queue_name}"
    waiter = asyncio.create_task(queue.dequeue(timeout=30))
    old: set[int] = set()

    async def listening() -> bool:
        old.update(await listener_pids(database_url, channel))
        return bool(old)

    await wait_until(listening)
    await terminate(database_url, old.pop())

    async def listening_again() -> bool:
        return bool(await listener_pids(database_url, channel) - old)

    await wait_until(listening_again, timeout=5)
    job = await queue.enqueue("echo", a=1)
    started = time.monotonic()
    assert await asyncio.wait_for(waiter, 5) == job
    assert time.monotonic() - started < 2


async def test_sweep_lock_is_held_on_its_own_connection(
    database_url: str, asyncpg_queues: MakeQueue, queue_name: str, lock_keyspace: int
) -> None:
    first, second = await asyncpg_queues(), await asyncpg_queues()

    async def stuck_job() -> str:
        job = await first.enqueue("echo", a=1, timeout=1, retries=0)
        assert job is not None
        got = await first.dequeue(timeout=5)
        assert got == job
        got.started = got.touched = int(time.time() * 1000) - 10_000
        got.attempts += 1
        await got.update(status=Status.ACTIVE)
        return job.key

    key = await stuck_job()
    assert await first.sweep(abort=0.05) == [key]
    holders = await sweep_lock_holders(database_url, lock_keyspace, queue_name)
    assert len(holders) == 1
    key = await stuck_job()
    assert await second.sweep(abort=0.05) == []  # refused: first holds the lock

    # A dead lock connection is noticed; the lock then goes to whoever asks first.
    await terminate(database_url, holders.pop())
    assert await second.sweep(abort=0.05) == [key]
    assert await first.sweep(abort=0.05) == []

    # disconnect() unlocks, so another queue takes over without waiting for the pool to recycle.
    await second.disconnect()
    key = await stuck_job()
    assert await first.sweep(abort=0.05) == [key]


async def test_migration_does_not_block_on_a_held_lock(
    schema_url: str, pg_schema: str, queue_name: str
) -> None:
    keyspace = random.randint(1_000_000, 2_000_000_000)
    holder = await asyncpg.connect(schema_url)
    try:
        await holder.execute("SELECT pg_advisory_lock($1, 0)", keyspace)
        queue = AsyncpgQueue.from_url(
            schema_url, name=queue_name, saq_lock_keyspace=keyspace, migration_timeout=0.5, min_size=1
        )
        started = time.monotonic()
        with pytest.raises(MigrationLockTimeout, match="migration lock"):
            await queue.connect()
        assert time.monotonic() - started < 5
        await holder.execute("SELECT pg_advisory_unlock($1, 0)", keyspace)

        await queue.connect()  # migrates now
        await queue.disconnect()

        # Once the schema is current, a held lock (as psycopg workers keep it) does not matter.
        await holder.execute("SELECT pg_advisory_lock($1, 0)", keyspace)
        await queue.connect()
        assert await queue.enqueue("echo", a=1) is not None
        await queue.disconnect()
    finally:
        await holder.close()


async def test_disconnect_requeues_jobs_fetched_but_never_handed_out(asyncpg_queues: MakeQueue) -> None:
    queue = await asyncpg_queues()
    job = await queue.enqueue("echo", a=1)
    assert job is not None
    # Simulate a waiter that was cancelled after its batch was fetched.
    queue._fetcher.waiting += 1
    await queue.schedule()
    queue._fetcher.waiting -= 1
    assert await queue.count("active") == 1
    await queue.disconnect()

    other = await asyncpg_queues()
    stored = await other.job(job.key)
    assert stored is not None and stored.status == Status.QUEUED and stored.attempts == 0
    assert await other.dequeue(timeout=5) == job


async def test_unreachable_server_fails_in_connect_without_the_password(queue_name: str) -> None:
    queue = AsyncpgQueue.from_url("postgresql://postgres:s3cret-pw@127.0.0.1:1/somedb", name=queue_name)
    with pytest.raises(BrokerUnavailableError) as excinfo:
        await queue.connect()
    text = "".join(traceback.format_exception(excinfo.value))
    assert "127.0.0.1:1/somedb" in text and queue_name in text
    assert "s3cret-pw" not in text


@pytest.mark.parametrize(
    ("user", "database"), [("no_such_user_x", "test"), ("postgres", "no_such_database_x")], ids=["user", "db"]
)
async def test_wrong_login_fails_in_connect(
    database_url: str, queue_name: str, user: str, database: str
) -> None:
    url = f"postgresql://{user}:pw-secret@127.0.0.1:5432/{database}"
    queue = AsyncpgQueue.from_url(url, name=queue_name)
    with pytest.raises(BrokerUnavailableError) as excinfo:
        await queue.connect()
    text = "".join(traceback.format_exception(excinfo.value))
    assert "127.0.0.1:5432/" in text and database in text
    assert "pw-secret" not in text


async def test_a_given_pool_is_used_and_never_closed(
    database_url: str, schema_url: str, queue_name: str, lock_keyspace: int
) -> None:
    pool = await asyncpg.create_pool(schema_url, min_size=1, max_size=5)
    try:
        queue = AsyncpgQueue(pool=pool, name=queue_name, saq_lock_keyspace=lock_keyspace)
        await queue.connect()
        await queue.connect()  # idempotent
        job = await queue.enqueue("echo", a=1)
        assert await queue.dequeue(timeout=5) == job
        assert await queue.sweep() == []
        await queue.disconnect()
        await queue.disconnect()
        assert await pool.fetchval("SELECT 1") == 1
        # The sweep lock was unlocked before its connection went back to the pool.
        assert await sweep_lock_holders(database_url, lock_keyspace, queue_name) == set()
    finally:
        await pool.close()


def test_missing_asyncpg_names_the_extra() -> None:
    code = """
import sys
sys.modules["asyncpg"] = None
import litestar_saq.backends
try:
    import litestar_saq.backends.asyncpg
except Exception as exc:
    print(type(exc).__mro__, str(exc))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert MissingDependencyException.__name__ in result.stdout
    assert "litestar-saq[postgres]" in result.stdout


async def test_ungrouped_jobs_run_while_a_group_is_busy(asyncpg_queues: MakeQueue) -> None:
    queue = await asyncpg_queues()
    grouped = [await queue.enqueue("echo", a=a, group_key="g") for a in range(2)]
    ungrouped = await queue.enqueue("echo", a=9)
    # Three waiters in one batch: one job of group "g" and the ungrouped job, never both of "g".
    results = await asyncio.gather(*(queue.dequeue(timeout=0.5) for _ in range(3)))
    got = [job for job in results if job is not None]
    assert len(got) == 2
    assert ungrouped in got
    first = next(job for job in got if job.group_key == "g")
    assert await queue.dequeue(timeout=0.3) is None
    await queue.finish(first, Status.COMPLETE)
    second = await queue.dequeue(timeout=5)
    assert second is not None and second in grouped and second != first


async def test_a_small_pool_never_deadlocks(asyncpg_queues: MakeQueue) -> None:
    # listener + sweep lock + one connection for everything else: nothing may hold two at once.
    queue = await asyncpg_queues(min_size=1, max_size=3)
    jobs = [await queue.enqueue("echo", a=a) for a in range(40)]
    async with running_worker(queue, [echo], concurrency=8):
        for job in jobs:
            assert job is not None
            await job.refresh(until_complete=15)
            assert job.status == Status.COMPLETE


async def test_a_waiting_client_is_woken_by_the_finish_not_by_polling(asyncpg_queues: MakeQueue) -> None:
    client, worker_queue = await asyncpg_queues(), await asyncpg_queues()
    job = await client.enqueue("echo", a=3)
    assert job is not None
    seen: list[Status] = []

    def finished(_job_id: str, status: Status) -> bool:
        seen.append(status)
        return status == Status.COMPLETE

    # The poll interval is far longer than the timeout: only the finish's notification can end the wait.
    waiting = asyncio.create_task(client.listen([job.key], finished, timeout=10, poll_interval=60))
    await wait_until(lambda: _has_seen(seen))
    async with running_worker(worker_queue, [echo]):
        started = time.monotonic()
        await asyncio.wait_for(waiting, 10)
    assert seen[-1] == Status.COMPLETE
    assert time.monotonic() - started < 5


async def _has_seen(seen: list[Status]) -> bool:
    return bool(seen)


async def test_apply_and_map_are_woken_by_the_finish_not_by_polling(asyncpg_queues: MakeQueue) -> None:
    client, worker_queue = await asyncpg_queues(), await asyncpg_queues()
    async with running_worker(worker_queue, [echo]):
        # A poll interval longer than the timeout: only notifications can deliver the results in time.
        assert await client.apply("echo", a=1, poll_interval=60, timeout=5) == 1
        assert await client.map("echo", [{"a": 2}, {"a": 3}], poll_interval=60, timeout=5) == [2, 3]


async def test_a_long_queue_name_still_wakes_waiters(
    database_url: str, asyncpg_queues: MakeQueue, queue_name: str
) -> None:
    # Channels are cut to PostgreSQL's 63-byte identifiers, the same way NOTIFY and LISTEN cut them.
    name = queue_name + "-" + "é" * 40
    queue = await asyncpg_queues(name=name, fallback_poll_interval=60)
    waiter = asyncio.create_task(queue.dequeue(timeout=10))

    async def listening() -> bool:
        return bool(await listener_pids(database_url, channel_name(f"saq:{name}")))

    await wait_until(listening)
    job = await queue.enqueue("echo", a=1)
    started = time.monotonic()
    assert await waiter == job
    assert time.monotonic() - started < 2


async def test_info_pages_through_incomplete_jobs(asyncpg_queues: MakeQueue) -> None:
    queue = await asyncpg_queues()
    keys = [(await queue.enqueue("echo", a=a, key=f"k{a}")).key for a in range(5)]  # type: ignore[union-attr]
    first = await queue.info(jobs=True, offset=0, limit=3)
    rest = await queue.info(jobs=True, offset=3, limit=3)
    assert [job["key"] for job in first["jobs"] + rest["jobs"]] == keys
    assert first["queued"] == 5


async def test_a_job_whose_worker_process_died_is_taken_back_at_once(asyncpg_queues: MakeQueue) -> None:
    from litestar_saq.liveness import new_worker_id

    queue = await asyncpg_queues()
    dead_pid = 2**22 + 12345  # above Linux's pid_max default: no such process
    host = new_worker_id().rsplit("-", 2)[0]
    started = await queue.enqueue("echo", a=1, timeout=600, retries=2)
    unstarted = await queue.enqueue("echo", a=2, timeout=600, retries=2)
    assert started is not None and unstarted is not None
    for _ in range(2):
        job = await queue.dequeue(timeout=5)
        assert job is not None
        if job == started:  # stored by its Worker, which then died
            job.worker_id, job.attempts = f"{host}-{dead_pid}-abcd1234", job.attempts + 1
        else:  # stored by dequeue, whose process died before the Worker's start write
            job.worker_id = f"{host}-{dead_pid}-dequeued"
        await queue.update(job)
    assert set(await queue.sweep()) == {started.key, unstarted.key}  # long before the 600 s timeout
    for job in (started, unstarted):
        await job.refresh()
        assert job.status == Status.QUEUED
        assert job.error is not None and "died" in job.error
        # The attempt the dead worker had begun counts, whether or not its start was stored.
        assert job.attempts == 1
