"""The SQL of the asyncpg queue, on tables identical in layout to SAQ's ``PostgresQueue``'s.

The tables themselves and their migrations are in :mod:`asyncpg_migrations`. Values are always bound as
parameters; only table names are written into the SQL, quoted the way ``psycopg.sql.Identifier`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ("Executor", "QueueSQL", "held_by_writer", "quote_identifier")


class Executor(Protocol):
    """The part of an asyncpg connection (or pool proxy) the queue uses; asyncpg ships no types."""

    async def execute(self, query: str, *args: Any) -> str: ...

    async def fetch(self, query: str, *args: Any) -> list[Any]: ...

    async def fetchrow(self, query: str, *args: Any) -> Any: ...

    async def fetchval(self, query: str, *args: Any) -> Any: ...

    def transaction(self) -> Any: ...


TERMINAL = "('aborted', 'complete', 'failed')"
INCOMPLETE = "('new', 'deferred', 'queued', 'active')"
INCOMPLETE_OR_ABORTING = "('new', 'deferred', 'queued', 'active', 'aborting')"
WAITED = -1
"""``expire_at`` of an unfinished job that a client waits for: its finish then sends a notification.

``expire_at`` means nothing until a job finishes (SAQ sets it then, and clears it on enqueue and retry),
so marking it there keeps the tables SAQ's while sparing every other finish a NOTIFY.
"""


def held_by_writer(worker_token: str, process_token: str, *, finishing: bool, row: str = "") -> str:
    """SQL: the stored job is still the writer's (tokens: ``liveness.fence_tokens``; NULL: no check).

    A running job's blob carries the id of the Worker, or the dequeuer id of the process, that holds
    it. A worker whose job was taken back (its stats expired: killed, frozen, cut off) may write late:
    its finish or start must not land on the run of the worker that took the job, so those need the
    job still running and still carrying a token. A retry needs the token only: the dashboard retries a
    finished job read from the store (so carrying its worker's id), while a late retry of a job that
    another worker ran since carries an id the stored job no longer has.
    """
    job, status = f"{row}job", f"{row}status"
    held = f"(position({worker_token} IN {job}) > 0 OR position({process_token} IN {job}) > 0)"
    running = f"{status} IN ('active', 'aborting')"
    if finishing:
        return f"({worker_token}::bytea IS NULL OR ({running} AND {held}))"
    return f"({worker_token}::bytea IS NULL OR {held})"


def quote_identifier(name: str) -> str:
    """Quote ``name`` as one SQL identifier, exactly as ``psycopg.sql.Identifier`` renders it."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class QueueSQL:
    """Every statement the queue runs, with its table names quoted once at construction."""

    enqueue: str
    enqueue_many: str
    dequeue_select: str
    dequeue_mark: str
    requeue: str
    update: str
    update_expire: str
    update_queued: str
    update_keep_status: str
    store_start: str
    finish_many: str
    mark_waited: str
    job: str
    jobs: str
    iter_jobs: str
    status_for_update: str
    job_status: str
    counts: str
    incomplete_jobs: str
    workers: str
    write_worker: str
    sweep_jobs: str
    sweep_stats: str
    stuck_candidates: str

    @classmethod
    def for_tables(cls, jobs_table: str, stats_table: str) -> QueueSQL:
        """Build the statements for the given (unquoted) table names."""
        jobs, stats = quote_identifier(jobs_table), quote_identifier(stats_table)

        def notify_done(done_channel: str, queue_channel: str) -> str:
            # Wake clients waiting for the job (only if one marked it: NOTIFY serialises commits) and,
            # for a grouped job, workers for the group's next job.
            return f"""
                SELECT pg_notify({done_channel}, key) FROM changed
                WHERE waited = {WAITED} AND octet_length(key) < 7900
                UNION ALL
                SELECT pg_notify({queue_channel}, 'saq:enqueue') FROM changed WHERE group_key IS NOT NULL"""

        return cls(
            # $1 key, $2 blob, $3 queue, $4 status, $5 priority, $6 group_key, $7 scheduled, $8 channel
            enqueue=f"""
                WITH inserted AS (
                    INSERT INTO {jobs} AS j (key, job, queue, status, priority, group_key, scheduled)
                    VALUES ($1, $2, $3, $4, $5, $6, $7)
                    ON CONFLICT (key) DO UPDATE SET
                        job = EXCLUDED.job, queue = EXCLUDED.queue, status = EXCLUDED.status,
                        priority = EXCLUDED.priority, group_key = EXCLUDED.group_key,
                        scheduled = EXCLUDED.scheduled, expire_at = NULL
                    WHERE j.status IN {TERMINAL} AND EXCLUDED.scheduled > j.scheduled
                    RETURNING 1
                )
                SELECT pg_notify($8, 'saq:enqueue') FROM inserted""",
            # $1 keys, $2 blobs, $3 queue, $4 priorities, $5 group keys, $6 scheduled, $7 channel; the
            # rule of `enqueue` for each row, one statement for the batch (keys unique within it). One
            # notification if any row went in; the inserted keys come back as one array.
            enqueue_many=f"""
                WITH inserted AS (
                    INSERT INTO {jobs} AS j (key, job, queue, status, priority, group_key, scheduled)
                    SELECT k, b, $3, 'queued', p, g, s
                    FROM unnest($1::text[], $2::bytea[], $4::smallint[], $5::text[], $6::bigint[])
                        AS t(k, b, p, g, s)
                    ON CONFLICT (key) DO UPDATE SET
                        job = EXCLUDED.job, queue = EXCLUDED.queue, status = EXCLUDED.status,
                        priority = EXCLUDED.priority, group_key = EXCLUDED.group_key,
                        scheduled = EXCLUDED.scheduled, expire_at = NULL
                    WHERE j.status IN {TERMINAL} AND EXCLUDED.scheduled > j.scheduled
                    RETURNING key
                )
                SELECT array_agg(key), (
                    SELECT pg_notify($7, 'saq:enqueue') FROM (SELECT 1 FROM inserted LIMIT 1) AS any_inserted
                ) FROM inserted""",
            # Jobs of a group with an active job wait; NOT EXISTS keeps ungrouped (NULL) jobs eligible.
            dequeue_select=f"""
                SELECT key, job, group_key FROM {jobs} AS j
                WHERE status = 'queued' AND queue = $1 AND $2 >= scheduled
                  AND priority BETWEEN $3 AND $4
                  AND (group_key IS NULL OR NOT EXISTS (
                      SELECT 1 FROM {jobs} AS a
                      WHERE a.status = 'active' AND a.queue = $1 AND a.group_key = j.group_key))
                ORDER BY priority, scheduled
                LIMIT $5
                FOR UPDATE SKIP LOCKED""",
            dequeue_mark=f"""
                UPDATE {jobs} AS j SET status = 'active', job = v.job
                FROM unnest($1::text[], $2::bytea[]) AS v(key, job)
                WHERE j.key = v.key""",
            requeue=f"""
                WITH changed AS (
                    UPDATE {jobs} AS j SET status = 'queued', job = v.job
                    FROM unnest($1::text[], $2::bytea[]) AS v(key, job)
                    WHERE j.key = v.key AND j.queue = $3 AND j.status = 'active'
                    RETURNING 1
                )
                SELECT pg_notify($4, 'saq:enqueue') FROM (SELECT 1 FROM changed LIMIT 1) AS any_changed""",
            update=f"UPDATE {jobs} SET job = $1, status = $2, scheduled = $3 WHERE key = $4 AND queue = $5",
            update_expire=f"""
                UPDATE {jobs} SET job = $1, status = $2, scheduled = $3, expire_at = $6
                WHERE key = $4 AND queue = $5""",
            # A job put back to queued wakes listening workers at once when it is due; a waiter's mark stays.
            update_queued=f"""
                WITH changed AS (
                    UPDATE {jobs} SET job = $1, status = 'queued', scheduled = $2,
                        expire_at = CASE WHEN expire_at = {WAITED} THEN {WAITED} END
                    WHERE key = $3 AND queue = $4 AND {held_by_writer("$7", "$8", finishing=False)}
                    RETURNING scheduled
                )
                SELECT pg_notify($5, 'saq:enqueue') FROM changed WHERE scheduled <= $6""",
            # A held-back start write must not undo a finish, retry or abort stored meanwhile, nor land
            # on the run of another worker ($4, $5: the writer's fence tokens).
            store_start=f"""
                UPDATE {jobs} SET job = $1
                WHERE key = $2 AND queue = $3 AND status = 'active'
                  AND {held_by_writer("$4", "$5", finishing=True)}""",
            # A progress or heartbeat write: dropped when it comes late, from a worker whose job was
            # taken back and runs elsewhere now (it would put its worker id back and win the fence).
            update_keep_status=f"""
                UPDATE {jobs} SET job = $1, scheduled = $2
                WHERE key = $3 AND queue = $4 AND {held_by_writer("$5", "$6", finishing=False)}""",
            # $1 keys, $2 blobs (NULL: delete the row, a negative ttl), $3 statuses, $4 scheduled,
            # $5 expire_at, $6 queue, $7 done channel, $8 queue channel, $9 $10 the fence tokens of
            # each finishing worker: `finish` and `delete` for a batch (keys unique), one statement, one
            # commit. A late finish of a job that was taken back from its worker is dropped.
            finish_many=f"""
                WITH v AS (
                    SELECT * FROM unnest(
                        $1::text[], $2::bytea[], $3::text[], $4::bigint[], $5::bigint[],
                        $9::bytea[], $10::bytea[]
                    ) AS v(key, job, status, scheduled, expire_at, fence, fence_process)
                ), before AS (  -- FOR UPDATE reads the latest expire_at: a waiter's mark is never missed
                    SELECT j.key, j.expire_at FROM {jobs} AS j JOIN v ON v.key = j.key
                    WHERE j.queue = $6 AND v.job IS NOT NULL
                      AND {held_by_writer("v.fence", "v.fence_process", finishing=True, row="j.")}
                    FOR UPDATE OF j
                ), updated AS (
                    UPDATE {jobs} AS j SET
                        job = v.job, status = v.status, scheduled = v.scheduled, expire_at = v.expire_at
                    FROM v JOIN before ON before.key = v.key
                    WHERE j.key = v.key
                    RETURNING j.key, j.group_key, before.expire_at AS waited
                ), deleted AS (
                    DELETE FROM {jobs} AS j USING v
                    WHERE j.key = v.key AND j.queue = $6 AND v.job IS NULL
                      AND {held_by_writer("v.fence", "v.fence_process", finishing=True, row="j.")}
                    RETURNING j.key, j.group_key, j.expire_at AS waited
                ), changed AS (
                    SELECT * FROM updated UNION ALL SELECT * FROM deleted
                )
                {notify_done("$7", "$8")}""",
            # The mark locks its rows for a moment, and a claim meanwhile skips them (SKIP LOCKED) and
            # may find the queue empty: a queued job marked is announced again once the lock is gone.
            mark_waited=f"""
                WITH marked AS (
                    UPDATE {jobs} SET expire_at = {WAITED}
                    WHERE key = ANY($1::text[]) AND queue = $2 AND status IN {INCOMPLETE_OR_ABORTING}
                      AND expire_at IS DISTINCT FROM {WAITED}
                    RETURNING status
                )
                SELECT pg_notify($3, 'saq:enqueue')
                FROM (SELECT 1 FROM marked WHERE status = 'queued' LIMIT 1) AS any_queued""",
            job=f"SELECT job, status FROM {jobs} WHERE key = $1 AND queue = $2",
            jobs=f"SELECT key, job, status FROM {jobs} WHERE key = ANY($1::text[]) AND queue = $2",
            iter_jobs=f"""
                SELECT key, job, status FROM {jobs}
                WHERE status = ANY($1::text[]) AND queue = $2 AND key > $3
                ORDER BY key LIMIT $4""",
            status_for_update=f"SELECT status FROM {jobs} WHERE key = $1 AND queue = $2 FOR UPDATE",
            job_status=f"SELECT status FROM {jobs} WHERE key = $1 AND queue = $2",
            counts=f"""
                SELECT
                    count(*) FILTER (WHERE status = 'queued' AND $2 >= scheduled),
                    count(*) FILTER (WHERE status = 'active'),
                    count(*)
                FROM {jobs} WHERE queue = $1 AND status IN {INCOMPLETE}""",
            incomplete_jobs=f"""
                SELECT job, status FROM {jobs} WHERE queue = $1 AND status IN {INCOMPLETE}
                ORDER BY priority, scheduled, key OFFSET $2 LIMIT $3""",
            workers=f"""
                SELECT worker_id, stats::text, queue_key, metadata::text FROM {stats}
                WHERE expire_at >= EXTRACT(EPOCH FROM NOW()) AND queue_key = $1""",
            write_worker=f"""
                INSERT INTO {stats} (worker_id, stats, queue_key, metadata, expire_at)
                VALUES ($1, $2::text::jsonb, $3, $4::text::jsonb, EXTRACT(EPOCH FROM NOW())::bigint + $5)
                ON CONFLICT (worker_id) DO UPDATE SET
                    stats = EXCLUDED.stats, queue_key = EXCLUDED.queue_key,
                    metadata = EXCLUDED.metadata, expire_at = EXCLUDED.expire_at""",
            sweep_jobs=f"DELETE FROM {jobs} WHERE queue = $1 AND status IN {TERMINAL} AND $2 >= expire_at",
            sweep_stats=f"DELETE FROM {stats} WHERE $1 >= expire_at",
            stuck_candidates=f"""
                SELECT key, job, status FROM {jobs}
                WHERE queue = $1 AND status IN ('active', 'aborting')""",
        )
