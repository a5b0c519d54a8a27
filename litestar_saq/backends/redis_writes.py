"""How our ``RedisQueue`` writes job state: SAQ's keys and values, fewer round trips, no ``SETEX``.

- a status change (``update``) and a finish publish the status in the same round trip as the write
  (SAQ: a second round trip for the PUBLISH), so a job costs two round trips after it is taken;
- expiring keys are written with ``SET … PX`` / ``SET … EX`` (redis-py 8 deprecates ``SETEX``);
- finish and the status write are one Lua script call each (``FINISH``, ``WRITE``), sent on a pooled
  connection without redis-py's pipeline layers (the worker's hot path).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from saq.job import Job, Status
from saq.queue.redis import RedisQueue as SAQRedisQueue
from saq.utils import millis, now

from litestar_saq.backends.redis_connections import ScriptRunner
from litestar_saq.backends.redis_scripts import FINISH, WRITE, LuaScript
from litestar_saq.liveness import fence_tokens

if TYPE_CHECKING:
    from redis.asyncio.client import Redis
    from saq.types import WorkerInfo

__all__ = ("RedisJobWrites",)


class RedisJobWrites(SAQRedisQueue):
    """SAQ's ``RedisQueue`` with its job writes pipelined (see the module).

    Args:
        redis: the client to use.
        max_concurrent_ops: SAQ's bound on concurrent enqueues and reads; also how many connections
            the queue keeps idle for its script calls (see ``redis_connections``).
        **kwargs: SAQ's other ``RedisQueue`` options.
    """

    def __init__(self, redis: Redis, *, max_concurrent_ops: int = 20, **kwargs: Any) -> None:
        super().__init__(redis, max_concurrent_ops=max_concurrent_ops, **kwargs)
        self.scripts = ScriptRunner(redis, keep=max_concurrent_ops)
        self._finish_script = LuaScript(redis, FINISH)
        self._write_script = LuaScript(redis, WRITE)

    async def abort(self, job: Job, error: str, ttl: float = 5) -> None:
        """Abort ``job``: a queued job ends at once, an active one is cancelled by its worker."""
        job.status = Status.ABORTING
        job.error = error
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lrem(self.namespace("queued"), 0, job.id)
            pipe.zrem(self.namespace("incomplete"), job.id)
            pipe.set(job.id, self.serialize(job))
            pipe.set(job.abort_id, error, px=max(1, int(ttl * 1000)))
            pipe.publish(job.id, job.status)
            removed_from_queue, *_ = await pipe.execute()
        if removed_from_queue:
            await self.finish(job, Status.ABORTED, error=error)
            await self.redis.delete(job.abort_id)
        else:
            await self.redis.lrem(self.namespace("active"), 0, job.id)

    async def write_worker_info(self, worker_id: str, info: WorkerInfo, ttl: int) -> None:
        """Record a worker's stats for ``ttl`` seconds."""
        current = now()
        key = self.namespace(f"worker_info:{worker_id}")
        stats = self.namespace("stats")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(key, json.dumps(info), ex=ttl)
            pipe.zremrangebyscore(stats, 0, current)
            pipe.zadd(stats, {key: current + millis(ttl)})
            pipe.expire(stats, ttl)
            await pipe.execute()

    async def _finish(
        self, job: Job, status: Status, *, result: Any = None, error: str | None = None
    ) -> None:
        keys = (self.namespace("active"), self.namespace("incomplete"), job.id)
        blob = self.serialize(job) if job.ttl >= 0 else ""
        # A worker's outcome of its run is fenced; aborts (dashboard, sweep, abort timer) are not.
        fenced = status in (Status.COMPLETE, Status.FAILED)
        fence, fence_process = fence_tokens(job.worker_id) if fenced else (None, None)
        tokens = (fence or b"", fence_process or b"")
        await self.scripts.run(self._finish_script, keys, (blob, job.ttl, job.status, *tokens))

    async def _update(self, job: Job, status: Status | None = None, **kwargs: Any) -> None:
        """Write ``job`` and publish its status in one round trip (SAQ: two)."""
        tokens: tuple[bytes, ...] = ()
        if not status:
            stored = await self.job(job.key)  # the stored status wins, so a progress write keeps an abort
            status = stored.status if stored else None
            fence, fence_process = fence_tokens(job.worker_id)  # and a late one is dropped (see WRITE)
            tokens = (fence or b"", fence_process or b"")
        job.status = status or job.status
        await self.scripts.run(self._write_script, (job.id,), (self.serialize(job), job.status, *tokens))
