"""Delete jobs of one status for ``litestar workers purge``: never a job that is running.

Each backend deletes a job only while it still has the status asked for, in one atomic step (a Lua
script on Redis, a conditional ``DELETE`` on PostgreSQL), so a job a worker takes meanwhile is kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from saq.job import Status

from litestar_saq.exceptions import InvalidValueError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from saq.job import Job
    from saq.queue import Queue

__all__ = ("PURGEABLE_STATUSES", "purge_jobs")

PURGEABLE_STATUSES = (Status.FAILED, Status.ABORTED, Status.QUEUED)
"""The statuses ``purge`` deletes; active jobs are never deleted."""

_REDIS_PURGE = """
local deleted = 0
for i, id in ipairs(ARGV) do
  if i > 1 then
    local payload = redis.call('get', id)
    if payload then
      local ok, job = pcall(cjson.decode, payload)
      -- A dequeued job keeps status "queued" until its worker starts it: the active list says so.
      if ok and job['status'] == ARGV[1] and not redis.call('lpos', KEYS[3], id) then
        if ARGV[1] == 'queued' then
          redis.call('lrem', KEYS[1], 0, id)
          redis.call('zrem', KEYS[2], id)
        end
        redis.call('del', id)
        deleted = deleted + 1
      end
    end
  end
end
return deleted
"""


async def purge_jobs(queue: Queue, jobs: Sequence[Job], status: Status) -> int:
    """Delete those of ``jobs`` still in ``status``; return how many were deleted."""
    if status not in PURGEABLE_STATUSES:
        raise InvalidValueError(f"purge deletes {', '.join(s.value for s in PURGEABLE_STATUSES)} jobs only")
    if not jobs:
        return 0
    from litestar_saq.backends.asyncpg import AsyncpgQueue
    from litestar_saq.backends.asyncpg_schema import quote_identifier
    from litestar_saq.backends.redis import RedisQueue

    if isinstance(queue, RedisQueue):
        keys = [queue.namespace(name) for name in ("queued", "incomplete", "active")]
        deleted = await queue.redis.eval(
            _REDIS_PURGE, len(keys), *keys, status.value, *(job.id for job in jobs)
        )
        return int(deleted)
    if isinstance(queue, AsyncpgQueue):
        async with queue.pool.acquire() as connection:
            result: str = await connection.execute(
                f"DELETE FROM {quote_identifier(queue.jobs_table)} "
                "WHERE queue = $1 AND key = ANY($2::text[]) AND status = $3",
                queue.name,
                [job.key for job in jobs],
                status.value,
            )
        return int(result.split()[-1])
    raise InvalidValueError(
        f"queue {queue.name!r}: purge works on Redis and PostgreSQL queues, not {type(queue).__name__}"
    )
