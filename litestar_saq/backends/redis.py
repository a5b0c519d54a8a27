"""``RedisQueue``: SAQ's Redis queue that fails clearly when Redis is down and closes only what it owns.

Keys and the job format are SAQ's own, so SAQ's tools and workers share a queue with ours.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from redis import asyncio as aioredis
from redis.exceptions import RedisError
from saq.job import Status
from saq.queue.redis import RedisQueue as SAQRedisQueue
from saq.utils import millis, now

from litestar_saq.exceptions import BrokerUnavailableError

if TYPE_CHECKING:
    from redis.asyncio.client import Redis
    from saq.job import Job
    from saq.types import WorkerInfo

__all__ = ("RedisQueue",)


class RedisQueue(SAQRedisQueue):
    """A SAQ ``RedisQueue`` that checks the connection on ``connect()`` and respects client ownership.

    Args:
        redis: the client to use.
        owns_client: close ``redis`` on ``disconnect()``; ``False`` for a client the application owns.
        **kwargs: SAQ's ``RedisQueue`` options (``name``, ``dump``, ``load``, ``max_concurrent_ops``…).
    """

    def __init__(self, redis: Redis, *, owns_client: bool = True, **kwargs: Any) -> None:
        super().__init__(redis, **kwargs)
        self.owns_client = owns_client

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisQueue:
        """Build a queue with its own client for ``url``; extra client options go to ``redis.from_url``."""
        queue_options = {
            option: kwargs.pop(option)
            for option in ("name", "dump", "load", "max_concurrent_ops", "swept_error_message")
            if option in kwargs
        }
        return cls(aioredis.from_url(url, **kwargs), owns_client=True, **queue_options)

    async def connect(self) -> None:
        """Check that Redis answers, so a wrong address fails at startup and not at the first job."""
        await super().connect()
        try:
            await self.redis.ping()
        except (RedisError, OSError) as exc:
            raise BrokerUnavailableError(
                f"queue {self.name!r}: cannot reach Redis at {self.broker_address()}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    async def disconnect(self) -> None:
        """Stop listening; close the client only if this queue created it."""
        if self.owns_client:
            await super().disconnect()
        else:
            await self._pubsub.close()

    def broker_address(self) -> str:
        """``host:port/db`` (or the socket path) of the client, without credentials."""
        kwargs = self.redis.connection_pool.connection_kwargs
        if "path" in kwargs:
            return f"unix://{kwargs['path']}"
        return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"

    # SAQ writes expiring keys with SETEX, which redis-py 8 deprecates; these three writes use
    # SET … PX instead and keep SAQ's keys and values.

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
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lrem(self.namespace("active"), 1, job.id)
            pipe.zrem(self.namespace("incomplete"), job.id)
            if job.ttl > 0:
                pipe.set(job.id, self.serialize(job), ex=job.ttl)
            elif job.ttl == 0:
                pipe.set(job.id, self.serialize(job))
            else:
                pipe.delete(job.id)
            await pipe.execute()
        await self.notify(job)
