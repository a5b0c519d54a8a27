"""``RedisQueue``: SAQ's Redis queue, made to run every job once and to ride out Redis outages.

Keys and the job format are SAQ's own, so SAQ's web UI, tools and workers share a queue with ours.
What differs from SAQ's ``RedisQueue``:

- the sweep never re-queues a job that a worker has just dequeued (SAQ #277), and recovers jobs of
  dead workers without waiting for their timeout (see ``redis_recovery``);
- dequeue blocks in short slices (redis-py 8 gives sockets a 5 s read timeout) and backs off while
  Redis is unreachable instead of spinning;
- enqueue fails within ``operation_timeout`` with an error naming the queue and host;
- a payload that cannot be decoded fails that job with a clear error instead of stalling the worker;
- ``listen``, ``job.refresh(until_complete=…)``, ``apply`` and ``map`` see a status published just
  before they subscribed (see ``redis_listen``);
- expiring keys are written with ``SET … PX`` (redis-py 8 deprecates ``SETEX``);
- ``disconnect()`` closes the client only if the queue created it.

Its few uses of SAQ internals go through :mod:`~litestar_saq.backends.redis_saq_adapter`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from redis import asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from saq.job import Job, Status
from saq.utils import now

from litestar_saq.backends.redis_listen import RedisJobWaits
from litestar_saq.backends.redis_recovery import OrphanJudge, Verdict
from litestar_saq.backends.redis_saq_adapter import (
    close_pubsub,
    is_wrong_queue_error,
    job_by_id,
    operation_slots,
)
from litestar_saq.backends.redis_scripts import ENQUEUE_MANY, LuaScript
from litestar_saq.backends.redis_take import JobTaker
from litestar_saq.backends.redis_writes import RedisJobWrites
from litestar_saq.dsn import describe_broker
from litestar_saq.exceptions import BrokerUnavailableError
from litestar_saq.job_options import JobOptionsQueue

if TYPE_CHECKING:
    from collections.abc import Sequence

    from redis.asyncio.client import Redis

__all__ = ("RedisQueue",)

logger = logging.getLogger("litestar_saq")

UNDECODABLE_FUNCTION = "<undecodable payload>"
"""The function name of a placeholder job that stands for a payload the queue could not decode."""
TAKES_SETTLE_S = 0.5
"""How long ``disconnect()`` waits for cancelled takes to finish and give back what they took."""
ENQUEUE_BATCH = 500
"""Jobs per enqueue script call: long enough to pay off, short enough not to stall Redis."""
_BROKER_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


class RedisQueue(JobOptionsQueue, RedisJobWaits, RedisJobWrites):
    """A SAQ ``RedisQueue`` that checks the connection on ``connect()`` and respects client ownership.

    Args:
        redis: the client to use.
        owns_client: close ``redis`` on ``disconnect()``; ``False`` for a client the application owns.
        operation_timeout: seconds an enqueue may take before it fails with ``BrokerUnavailableError``.
        orphan_grace_s: seconds a job must look orphaned (dead worker, dequeued but never started)
            before the sweep recovers it.
        **kwargs: SAQ's ``RedisQueue`` options (``name``, ``dump``, ``load``, ``max_concurrent_ops``…).
    """

    def __init__(
        self,
        redis: Redis,
        *,
        owns_client: bool = True,
        operation_timeout: float = 10.0,
        orphan_grace_s: float = 5.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(redis, **kwargs)
        self.owns_client = owns_client
        self.operation_timeout = operation_timeout
        self._judge = OrphanJudge(grace_s=orphan_grace_s)
        self._outage_started: float | None = None
        socket_timeout = redis.connection_pool.connection_kwargs.get("socket_timeout") or 5.0
        # Block for less than the socket's read timeout, or every idle wait ends in a TimeoutError.
        self._block_slice_s = max(0.1, min(2.0, float(socket_timeout) / 2))
        self._taker = JobTaker(redis, self.namespace("queued"), self.namespace("active"))
        self._enqueue_lua = LuaScript(redis, ENQUEUE_MANY)
        self._operation_slots = operation_slots(self)
        self._incomplete_key = self.namespace("incomplete")
        self._queued_key = self.namespace("queued")

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisQueue:
        """Build a queue with its own client for ``url``; extra client options go to ``redis.from_url``."""
        queue_options = {
            option: kwargs.pop(option)
            for option in (
                "name",
                "dump",
                "load",
                "max_concurrent_ops",
                "swept_error_message",
                "operation_timeout",
                "orphan_grace_s",
            )
            if option in kwargs
        }
        # redis-py 8 does not retry a failed connection by default; after a Redis restart every pooled
        # connection is dead, so allow a few quick reconnects before an operation gives up.
        kwargs.setdefault("retry", Retry(ExponentialBackoff(cap=0.5, base=0.02), retries=3))
        return cls(aioredis.from_url(url, **kwargs), owns_client=True, **queue_options)

    async def connect(self) -> None:
        """Check that Redis answers, so a wrong address fails at startup and not at the first job."""
        await super().connect()
        try:
            await self.redis.ping()
        except (RedisError, OSError) as exc:
            raise BrokerUnavailableError(
                f"queue {self.name!r}: cannot reach Redis at {describe_broker(self.redis)}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    async def disconnect(self) -> None:
        """Stop listening; close the client only if this queue created it. Never fails on an outage."""
        await self._taker.settle(TAKES_SETTLE_S)
        await self.settle_waited_reads(TAKES_SETTLE_S)
        await self.scripts.release_all()
        try:
            await close_pubsub(self)
        except _BROKER_ERRORS as exc:
            logger.debug("queue %r: unsubscribing failed while disconnecting: %s", self.name, exc)
        if self.owns_client:
            await self.redis.aclose()
            await self.redis.connection_pool.disconnect()

    # --- enqueue and dequeue ---------------------------------------------------------------------

    async def _enqueue(self, job: Job) -> Job | None:
        """Write ``job`` as SAQ's enqueue script does, in one round trip."""
        keys = (self._incomplete_key, self._queued_key, job.id, job.abort_id)
        try:
            async with self._operation_slots:
                added = await self.scripts.run(
                    self._enqueue_lua, keys, (self.serialize(job), job.scheduled), self.operation_timeout
                )
        except (asyncio.TimeoutError, *_BROKER_ERRORS) as exc:
            raise self._enqueue_failed(job, 1, exc) from exc
        if not added[0]:
            return None
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("queue %r: enqueued %s", self.name, job.info(False))
        return job

    async def _enqueue_many(self, jobs: Sequence[Job]) -> list[Job | None]:
        """Write ``jobs`` as SAQ's enqueue script does, one round trip per ``ENQUEUE_BATCH`` jobs."""
        enqueued: list[Job | None] = []
        for start in range(0, len(jobs), ENQUEUE_BATCH):
            batch = jobs[start : start + ENQUEUE_BATCH]
            keys = [self._incomplete_key, self._queued_key]
            values: list[Any] = []
            for job in batch:
                keys += (job.id, job.abort_id)
                values += (self.serialize(job), job.scheduled)
            try:
                async with self._operation_slots:
                    added = await self.scripts.run(self._enqueue_lua, keys, values, self.operation_timeout)
            except (asyncio.TimeoutError, *_BROKER_ERRORS) as exc:
                raise self._enqueue_failed(batch[0], len(jobs), exc) from exc
            enqueued += (job if added_one else None for job, added_one in zip(batch, added, strict=True))
        if logger.isEnabledFor(logging.DEBUG):
            for new_job in enqueued:
                if new_job is not None:
                    logger.debug("queue %r: enqueued %s", self.name, new_job.info(False))
        return enqueued

    def _enqueue_failed(self, job: Job, count: int, exc: BaseException) -> BrokerUnavailableError:
        which = f"{job.function!r} (key {job.key!r})" if count == 1 else f"{count} jobs"
        return BrokerUnavailableError(
            f"queue {self.name!r}: could not enqueue {which}: Redis at {describe_broker(self.redis)} did "
            f"not answer ({type(exc).__name__}: {exc}). The job was not enqueued; retry later or check "
            "the broker."
        )

    async def dequeue(self, timeout: float = 0.0, poll_interval: float = 0.0) -> Job | None:
        """Wait up to ``timeout`` seconds (0: for ever) for a job; survive Redis going away meanwhile."""
        deadline = time.monotonic() + timeout if timeout else None
        while True:
            wait_s = self._block_slice_s
            if deadline is not None:
                wait_s = min(wait_s, deadline - time.monotonic())
                if wait_s <= 0:
                    return None
            try:
                taken = await self._taker.take(wait_s)
                if not taken:
                    self._broker_is_back()
                    continue
                job_id, blob = taken[0]
                job = self.deserialize(blob) if blob is not None else await self._read_taken_job(job_id)
            except _BROKER_ERRORS as exc:
                await self._wait_for_broker(exc)
                continue
            self._broker_is_back()
            if job is None:
                continue  # removed meanwhile (e.g. aborted); the sweep drops its active-list entry
            if job.function == UNDECODABLE_FUNCTION:
                job.key = self.job_key_from_id(_text(job_id))  # so finish() replaces the bad payload
                await self.finish(job, Status.FAILED, error=job.error)
                continue
            return job

    async def _read_taken_job(self, job_id: Any) -> Job | None:
        try:
            return await job_by_id(self, job_id)
        except asyncio.CancelledError:
            self._taker.give_back(job_id)  # the caller went away before it had the job
            raise

    async def _wait_for_broker(self, exc: BaseException) -> None:
        """Back off while Redis is unreachable: log once per outage, never spin."""
        current = time.monotonic()
        if self._outage_started is None:
            self._outage_started = current
            logger.error(
                "queue %r: lost Redis at %s (%s: %s); retrying with backoff",
                self.name,
                describe_broker(self.redis),
                type(exc).__name__,
                exc,
            )
        await asyncio.sleep(min(5.0, 0.1 + (current - self._outage_started) / 4))

    def _broker_is_back(self) -> None:
        if self._outage_started is not None:
            logger.warning(
                "queue %r: Redis at %s is back after %.1f s",
                self.name,
                describe_broker(self.redis),
                time.monotonic() - self._outage_started,
            )
            self._outage_started = None

    def deserialize(self, payload: dict[str, Any] | str | bytes | None, status: Any = None) -> Job | None:
        """Decode a stored job; an undecodable payload becomes a FAILED placeholder saying why."""
        try:
            return super().deserialize(payload, status)
        except Exception as exc:
            if is_wrong_queue_error(exc):
                raise
            shown = payload[:200] if isinstance(payload, (str, bytes)) else payload
            error = (
                f"queue {self.name!r}: a stored job could not be decoded ({type(exc).__name__}: {exc}); "
                f"payload starts with {shown!r}"
            )
            logger.error("%s", error)
            return Job(function=UNDECODABLE_FUNCTION, queue=self, status=Status.FAILED, error=error)

    # --- sweep and recovery ----------------------------------------------------------------------

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        """Recover stuck and orphaned jobs; one worker per ``lock`` seconds does it (a Redis lock)."""
        if not await self.redis.set(self.namespace("sweep"), 1, nx=True, ex=max(1, int(lock))):
            return []
        job_ids = [_text(job_id) for job_id in await self.redis.lrange(self.namespace("active"), 0, -1)]
        self._judge.forget_all_but(set(job_ids))
        if not job_ids:
            return []
        blobs = await self.redis.mget(job_ids)
        live_workers = await self.live_worker_ids()
        swept = []
        for job_id, blob in zip(job_ids, blobs, strict=True):
            job = self.deserialize(blob)
            verdict = self._judge.judge(job_id, job, live_workers)
            if verdict is not Verdict.KEEP:
                swept.append(job_id)
                await self._recover(job_id, job, verdict, abort)
        return swept

    async def live_worker_ids(self) -> set[str]:
        """Ids of the workers whose stats have not expired."""
        keys = await self.redis.zrangebyscore(self.namespace("stats"), now(), "inf")
        prefix = self.namespace("worker_info:")
        return {_text(key)[len(prefix) :] for key in keys}

    async def _recover(self, job_id: str, job: Job | None, verdict: Verdict, abort_wait_s: float) -> None:
        error = self.swept_error_message
        if verdict is Verdict.FORGET or job is None:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.lrem(self.namespace("active"), 0, job_id)
                if job is None:
                    pipe.zrem(self.namespace("incomplete"), job_id)
                await pipe.execute()
            logger.info("queue %r: dropped stale active entry %s", self.name, job_id)
            return
        logger.warning("queue %r: recovering job %s (%s)", self.name, job.key, verdict.value)
        if verdict is Verdict.REQUEUE:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.lrem(self.namespace("active"), 0, job_id)
                pipe.rpush(self.namespace("queued"), job_id)
                await pipe.execute()
            return
        if verdict is Verdict.STUCK:
            await self.abort(job, error=error)
            try:
                await job.refresh(abort_wait_s)
            except asyncio.TimeoutError:
                logger.info("queue %r: job %s did not confirm its abort", self.name, job.key)
        if job.retryable:
            await self.retry(job, error=error)
        else:
            await self.finish(job, Status.ABORTED, error=error)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
