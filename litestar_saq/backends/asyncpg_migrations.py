"""The tables and migrations of the asyncpg queue: SAQ's ``PostgresQueue`` layout, step by step.

The tables, index names, schema version (3, one row in the versions table) and migration steps are the
ones SAQ's psycopg queue uses, so both kinds of worker can share a database.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from litestar_saq.backends.asyncpg_schema import quote_identifier
from litestar_saq.exceptions import MigrationLockTimeout, SchemaTooNewError

if TYPE_CHECKING:
    from litestar_saq.backends.asyncpg_schema import Executor

__all__ = ("SCHEMA_VERSION", "MigrationLockTimeout", "migrate", "migration_steps")

SCHEMA_VERSION = 3
"""The version SAQ 0.26 writes to its versions table after the last migration."""


def migration_steps(jobs: str, stats: str) -> list[tuple[int, str]]:
    """Return SAQ's migrations as ``(version, sql)`` pairs for the quoted table names given."""
    return [
        (
            1,
            f"""
            CREATE TABLE IF NOT EXISTS {jobs} (
                key TEXT PRIMARY KEY,
                lock_key SERIAL NOT NULL,
                job BYTEA NOT NULL,
                queue TEXT NOT NULL,
                status TEXT NOT NULL,
                priority SMALLINT NOT NULL DEFAULT 0,
                group_key TEXT,
                scheduled BIGINT NOT NULL DEFAULT EXTRACT(EPOCH FROM NOW()),
                expire_at BIGINT
            );
            CREATE INDEX IF NOT EXISTS saq_jobs_dequeue_idx ON {jobs} (status, queue, scheduled);
            CREATE TABLE IF NOT EXISTS {stats} (
                worker_id TEXT PRIMARY KEY,
                stats JSONB,
                expire_at BIGINT
            );
            """,
        ),
        (
            2,
            f"""
            ALTER TABLE {stats} ADD COLUMN IF NOT EXISTS metadata JSONB;
            ALTER TABLE {stats} ADD COLUMN IF NOT EXISTS queue_key TEXT;
            CREATE INDEX IF NOT EXISTS saq_stats_expire_at_idx ON {stats} (expire_at);
            CREATE INDEX IF NOT EXISTS saq_stats_queue_key_idx ON {stats} (queue_key);
            """,
        ),
        (
            3,
            f"""
            CREATE INDEX IF NOT EXISTS saq_jobs_status_queue_group_key_idx
                ON {jobs} (status, queue, group_key);
            CREATE INDEX IF NOT EXISTS saq_jobs_status_queue_priority_scheduled_idx
                ON {jobs} (status, queue, priority, scheduled);
            DROP INDEX saq_jobs_dequeue_idx;
            """,
        ),
    ]


async def _read_version(conn: Executor, versions: str) -> int | None:
    """Return the schema version, or ``None`` when the versions table does not exist yet."""
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", versions)
    if not exists:
        return None
    version = await conn.fetchval(f"SELECT max(version) FROM {versions}")
    return int(version) if version is not None else 0


async def migrate(
    conn: Executor,
    *,
    versions_table: str,
    jobs_table: str,
    stats_table: str,
    lock_keyspace: int,
    deadline_s: float = 30.0,
) -> None:
    """Bring the tables to schema version 3 under the migration advisory lock ``(keyspace, 0)``.

    SAQ's psycopg workers keep that lock for as long as their pooled connection lives, so this never
    blocks on it: while another session holds it, the version is re-read until it is current or
    ``deadline_s`` passes, and then :class:`MigrationLockTimeout` says who to look for.
    """
    versions, jobs, stats = (quote_identifier(t) for t in (versions_table, jobs_table, stats_table))
    deadline = time.monotonic() + deadline_s
    while True:
        version = await _read_version(conn, versions)
        if version is not None and version > SCHEMA_VERSION:
            raise SchemaTooNewError(
                f"the SAQ schema in {versions_table!r} is at version {version}, newer than the "
                f"{SCHEMA_VERSION} this litestar-saq understands; upgrade litestar-saq"
            )
        if version == SCHEMA_VERSION:
            return
        async with conn.transaction():
            # A transaction-level lock conflicts with SAQ's session-level lock on the same key and is
            # released by the commit, so it never outlives this migration.
            if await conn.fetchval("SELECT pg_try_advisory_xact_lock($1, 0)", lock_keyspace):
                await conn.execute(f"CREATE TABLE IF NOT EXISTS {versions} (version INT)")
                current = await conn.fetchval(f"SELECT max(version) FROM {versions}") or 0
                if current >= SCHEMA_VERSION:
                    return
                for step_version, statements in migration_steps(jobs, stats):
                    if step_version > current:
                        await conn.execute(statements)
                await conn.execute(f"DELETE FROM {versions}")
                await conn.execute(f"INSERT INTO {versions} (version) VALUES ($1)", SCHEMA_VERSION)
                return
        if time.monotonic() >= deadline:
            raise MigrationLockTimeout(
                f"the SAQ tables are at schema version {version or 0}, not {SCHEMA_VERSION}, and another "
                f"session holds the migration lock ({lock_keyspace}, 0) without finishing; look for a stuck "
                "SAQ worker in pg_locks"
            )
        await asyncio.sleep(0.2)
