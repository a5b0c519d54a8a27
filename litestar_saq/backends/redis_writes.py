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

from litestar_saq.backends.redis_scripts import FINISH, WRITE, LuaScript

if TYPE_CHECKING:
    from saq.types import WorkerInfo

__all__ = ("RedisJobWrites",)


class RedisJobWrites(SAQRedisQueue):
    """SAQ's ``RedisQueue`` with its job writes pipelined (see the module)."""

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
        await self._script(FINISH).run(self.redis, keys, (blob, job.ttl, job.status))

    async def _update(self, job: Job, status: Status | None = None, **kwargs: Any) -> None:
        """Write ``job`` and publish its status in one round trip (SAQ: two)."""
        if not status:
            stored = await self.job(job.key)  # the stored status wins, so a progress write keeps an abort
            status = stored.status if stored else None
        job.status = status or job.status
        await self._script(WRITE).run(self.redis, (job.id,), (self.serialize(job), job.status))

    def _script(self, source: str) -> LuaScript:
        scripts: dict[str, LuaScript] = self.__dict__.setdefault("_write_scripts", {})
        if source not in scripts:
            scripts[source] = LuaScript(self.redis, source)
        return scripts[source]
