"""AsyncpgQueue and SAQ's psycopg PostgresQueue share tables, locks and notifications.

psycopg is a test-only dependency here: it is the reference the asyncpg queue must interoperate with.
"""

from __future__ import annotations

import asyncio
import collections
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from saq.job import Status
from saq.queue.postgres import PostgresQueue

from litestar_saq.backends.asyncpg import AsyncpgQueue
from tests.support.poll import wait_until
from tests.support.workers import running_worker

MakeQueue = Callable[..., Awaitable[AsyncpgQueue]]


async def echo(_ctx: Any, *, a: int) -> int:
    return a


@pytest.fixture
async def psycopg_queues(
    database_url: str, pg_schema: str, queue_name: str, lock_keyspace: int
) -> AsyncIterator[Callable[..., Awaitable[PostgresQueue]]]:
    """Make connected SAQ ``PostgresQueue``s (psycopg) in this test's schema."""
    separator = "&" if "?" in database_url else "?"
    url = f"{database_url}{separator}options=-csearch_path%3D{pg_schema}"
    queues: list[PostgresQueue] = []

    async def make(**options: Any) -> PostgresQueue:
        options.setdefault("name", queue_name)
        options.setdefault("saq_lock_keyspace", lock_keyspace)
        queue = PostgresQueue.from_url(url, min_size=1, max_size=12, **options)
        await queue.connect()
        queues.append(queue)
        return queue

    yield make
    for queue in queues:
        await queue.disconnect()


async def schema_layout(database_url: str, schema: str) -> dict[str, Any]:
    connection = await asyncpg.connect(database_url)
    try:
        columns = await connection.fetch(
            """SELECT table_name, column_name, data_type, is_nullable, column_default
               FROM information_schema.columns WHERE table_schema = $1 ORDER BY table_name, column_name""",
            schema,
        )
        indexes = await connection.fetch(
            """SELECT indexname, replace(indexdef, $1, 'S') FROM pg_indexes
               WHERE schemaname = $2 ORDER BY indexname""",
            schema,
            schema,
        )
        versions = await connection.fetch(f'SELECT version FROM "{schema}".saq_versions')
    finally:
        await connection.close()
    return {
        "columns": [tuple(row) for row in columns],
        "indexes": [tuple(row) for row in indexes],
        "versions": [row[0] for row in versions],
    }


async def test_tables_are_the_ones_saq_creates(
    database_url: str, pg_schema: str, lock_keyspace: int, asyncpg_queues: MakeQueue, psycopg_queues: Any
) -> None:
    await asyncpg_queues()
    ours = await schema_layout(database_url, pg_schema)
    assert ours["versions"] == [3]

    reference_schema = f"ref_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f'CREATE SCHEMA "{reference_schema}"')
    try:
        separator = "&" if "?" in database_url else "?"
        queue = PostgresQueue.from_url(
            f"{database_url}{separator}options=-csearch_path%3D{reference_schema}",
            min_size=1,
            max_size=2,
            saq_lock_keyspace=lock_keyspace + 1,
        )
        await queue.connect()
        await queue.disconnect()
        reference = await schema_layout(database_url, reference_schema)
    finally:
        await admin.execute(f'DROP SCHEMA "{reference_schema}" CASCADE')
        await admin.close()
    # Column defaults name the schema's own sequence; compare them without the schema.
    assert _without_schema(ours, pg_schema) == _without_schema(reference, reference_schema)


def _without_schema(layout: dict[str, Any], schema: str) -> dict[str, Any]:
    return {
        key: [
            tuple(str(v).replace(schema, "S") for v in row) if isinstance(row, tuple) else row for row in rows
        ]
        for key, rows in layout.items()
    }


async def test_psycopg_queue_accepts_our_schema_and_versions(
    asyncpg_queues: MakeQueue, psycopg_queues: Any
) -> None:
    await asyncpg_queues()
    # SAQ's init_db reads version 3 and must not migrate (or fail) again.
    await psycopg_queues()


async def test_job_enqueued_by_psycopg_runs_on_our_worker(
    asyncpg_queues: MakeQueue, psycopg_queues: Any
) -> None:
    ours = await asyncpg_queues()
    theirs = await psycopg_queues()
    job = await theirs.enqueue("echo", a=5, group_key=None)
    assert job is not None
    async with running_worker(ours, [echo]):
        await job.refresh(until_complete=10)
    assert (job.status, job.result) == (Status.COMPLETE, 5)


async def test_job_enqueued_by_us_runs_on_a_psycopg_worker(
    asyncpg_queues: MakeQueue, psycopg_queues: Any
) -> None:
    ours = await asyncpg_queues()
    theirs = await psycopg_queues()
    job = await ours.enqueue("echo", a=6, retries=2, ttl=30)
    assert job is not None
    async with running_worker(theirs, [echo]):
        await job.refresh(until_complete=10)
    assert (job.status, job.result, job.attempts) == (Status.COMPLETE, 6, 1)
    stored = await theirs.job(job.key)
    assert stored is not None and stored.result == 6


async def test_enqueue_wakes_psycopg_listeners_with_plain_payloads(
    schema_url: str, asyncpg_queues: MakeQueue, queue_name: str
) -> None:
    queue = await asyncpg_queues()
    listener = await asyncpg.connect(schema_url)
    payloads: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    await listener.add_listener(
        f"saq:{queue_name}", lambda _c, _p, channel, payload: payloads.put_nowait((channel, payload))
    )
    try:
        await queue.enqueue("echo", a=1)
        assert await asyncio.wait_for(payloads.get(), 5) == (f"saq:{queue_name}", "saq:enqueue")
    finally:
        await listener.close()


async def test_stored_rows_use_saq_formats(schema_url: str, asyncpg_queues: MakeQueue) -> None:
    queue = await asyncpg_queues()
    job = await queue.enqueue("echo", a=1, scheduled=2_000_000_000, priority=3)
    ungrouped = await queue.enqueue("echo", a=2)
    assert job is not None and ungrouped is not None
    await queue.worker_info("w1", queue_key=queue.name, metadata={"m": 1}, ttl=60)
    connection = await asyncpg.connect(schema_url)
    try:
        row = await connection.fetchrow("SELECT * FROM saq_jobs WHERE key = $1", job.key)
        null_group = await connection.fetchval(
            "SELECT group_key IS NULL FROM saq_jobs WHERE key = $1", ungrouped.key
        )
        stats = await connection.fetchrow("SELECT jsonb_typeof(stats), metadata->>'m' FROM saq_stats")
    finally:
        await connection.close()
    assert (row["status"], row["priority"], row["scheduled"], row["queue"]) == (
        "queued",
        3,
        2_000_000_000,
        queue.name,
    )
    assert isinstance(row["job"], bytes)
    assert queue.deserialize(row["job"]) == job
    assert null_group is True
    assert tuple(stats) == ("object", "1")


async def test_two_workers_never_run_a_job_twice(asyncpg_queues: MakeQueue, psycopg_queues: Any) -> None:
    runs: collections.Counter[str] = collections.Counter()

    async def count_run(ctx: Any) -> None:
        runs[ctx["job"].key] += 1

    first, second = await asyncpg_queues(), await asyncpg_queues()
    third = await psycopg_queues()
    keys = []
    for index in range(300):
        job = await (first, second, third)[index % 3].enqueue("count_run")
        assert job is not None
        keys.append(job.key)

    async def all_ran() -> bool:
        return len(runs) == len(keys)

    async with (
        running_worker(first, [("count_run", count_run)], concurrency=10),
        running_worker(second, [("count_run", count_run)], concurrency=10),
        running_worker(third, [("count_run", count_run)], concurrency=5),
    ):
        await wait_until(all_ran, timeout=30)
        await wait_until(lambda: _counted(first, len(keys)), timeout=10)
    assert set(runs) == set(keys)
    assert max(runs.values()) == 1


def _counting_echo() -> tuple[collections.Counter[str], Callable[..., Awaitable[int]]]:
    """A task returning its ``a`` and the count of runs per job key it keeps."""
    runs: collections.Counter[str] = collections.Counter()

    async def count_run(ctx: Any, *, a: int) -> int:
        runs[ctx["job"].key] += 1
        return a

    return runs, count_run


async def test_a_burst_from_psycopg_runs_once_on_our_batching_worker(
    asyncpg_queues: MakeQueue, psycopg_queues: Any
) -> None:
    # Our worker claims several jobs per statement, claims a slot's next job while its finish is
    # written, and writes several finishes per statement (deletes included): SAQ reads each result.
    ours, theirs = await asyncpg_queues(), await psycopg_queues()
    runs, count_run = _counting_echo()

    kept = [await theirs.enqueue("count_run", a=index, ttl=60) for index in range(60)]
    dropped = [await theirs.enqueue("count_run", a=index, ttl=-1) for index in range(20)]
    keys = [job.key for job in kept + dropped if job is not None]
    assert len(keys) == 80

    async def all_ran() -> bool:
        return len(runs) == len(keys) and await theirs.count("incomplete") == 0

    async with running_worker(ours, [("count_run", count_run)], concurrency=10):
        await wait_until(all_ran, timeout=30)
    assert set(runs) == set(keys) and max(runs.values()) == 1
    for index, job in enumerate(kept):
        assert job is not None
        stored = await theirs.job(job.key)
        assert stored is not None
        assert (stored.status, stored.result, stored.attempts) == (Status.COMPLETE, index, 1)
    for job in dropped:
        assert job is not None and await theirs.job(job.key) is None


async def test_a_bulk_enqueue_of_ours_runs_once_on_a_psycopg_worker(
    asyncpg_queues: MakeQueue, psycopg_queues: Any
) -> None:
    ours, theirs = await asyncpg_queues(), await psycopg_queues()
    runs, count_run = _counting_echo()

    jobs = await ours.enqueue_many([("count_run", {"a": index}) for index in range(80)])
    assert all(job is not None for job in jobs)

    async def all_ran() -> bool:
        return len(runs) == len(jobs) and await ours.count("incomplete") == 0

    async with running_worker(theirs, [("count_run", count_run)], concurrency=10):
        await wait_until(all_ran, timeout=30)
    assert max(runs.values()) == 1
    stored = await ours.jobs([job.key for job in jobs if job is not None])
    assert [(job.status, job.result) if job else None for job in stored] == [
        (Status.COMPLETE, index) for index in range(80)
    ]


async def test_psycopg_sweeps_never_take_a_job_our_worker_claimed(
    asyncpg_queues: MakeQueue, psycopg_queues: Any
) -> None:
    # SAQ's sweep judges a running job by the started/touched of its stored blob: our claims store
    # them with the row's status in one transaction, so a sweep never sees a claimed job as stuck.
    ours, theirs = await asyncpg_queues(), await psycopg_queues()
    runs: collections.Counter[str] = collections.Counter()
    swept: list[str] = []

    async def count_run(ctx: Any) -> None:
        runs[ctx["job"].key] += 1
        await asyncio.sleep(0.001)

    jobs = await ours.enqueue_many([("count_run", {"timeout": 3, "heartbeat": 3})] * 200)
    keys = {job.key for job in jobs if job is not None}
    assert len(keys) == 200

    await theirs.sweep()  # before our worker's first sweep: SAQ's queue holds the sweep lock
    assert theirs._has_sweep_lock

    async def all_ran_while_swept() -> bool:
        swept.extend(await theirs.sweep())
        return len(runs) == len(keys) and await ours.count("incomplete") == 0

    async with running_worker(ours, [("count_run", count_run)], concurrency=10):
        await wait_until(all_ran_while_swept, timeout=30, interval=0.01)
    assert swept == []
    assert set(runs) == keys and max(runs.values()) == 1


async def _counted(queue: AsyncpgQueue, expected: int) -> bool:
    statuses = [job.status async for job in queue.iter_jobs()]
    return statuses.count(Status.COMPLETE) == expected


def test_psycopg_is_never_imported() -> None:
    import subprocess

    code = "import sys, litestar_saq.backends.asyncpg; print('psycopg' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
