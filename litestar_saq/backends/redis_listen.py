"""Waiting for Redis jobs (``listen``, ``job.refresh(until_complete=…)``, ``apply``, ``map``) without a gap.

SAQ's ``RedisQueue.listen`` reads the job, then subscribes to its status channel through a shared
pub/sub task: a status published between the read and the moment the subscription takes effect is
never seen, and the caller waits for its whole timeout (``refresh(until_complete=5)`` of a job a fast
worker finished meanwhile). Here each wait has a subscription of its own, and the order is:

1. subscribe to the jobs' channels and wait until Redis confirms every subscription;
2. read the jobs' stored statuses (what was published before step 1 is seen here);
3. take the statuses published since, and read the stored ones again whenever ``poll_interval``
   passes without one (a safety net: e.g. a status published while the pub/sub connection dropped).

The subscription's connection is closed when the wait ends, however it ends (returned, timed out,
cancelled), so no task is left reading it.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import TYPE_CHECKING, Any

from saq.job import Status
from saq.queue.redis import RedisQueue as SAQRedisQueue

from litestar_saq.backends.waiting import WaitForChange, WaitsOnChanges, WatchJobs

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

    from redis.asyncio.client import PubSub, Redis
    from saq.types import ListenCallback

__all__ = ("RedisJobWaits", "StatusSubscription", "call_until_done", "status_subscription", "watcher")


class StatusSubscription:
    """The statuses published on a set of job channels, read from one pub/sub connection."""

    def __init__(self, pubsub: PubSub) -> None:
        self._pubsub = pubsub

    async def next_change(self, timeout: float) -> tuple[str, Status] | None:
        """The next ``(job id, status)`` published, or ``None`` if ``timeout`` seconds pass without one."""
        message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
        if message is None or message.get("type") != "message":
            return None
        return _text(message["channel"]), Status[_text(message["data"]).upper()]

    async def until_change(self, timeout: float) -> None:
        """Return once a status was published, or after ``timeout`` seconds."""
        await self.next_change(timeout)


@contextlib.asynccontextmanager
async def status_subscription(redis: Redis, job_ids: Sequence[str]) -> AsyncIterator[StatusSubscription]:
    """Subscribe to the status channels of ``job_ids`` and yield once Redis confirmed each of them."""
    pubsub = redis.pubsub()
    try:
        channels = list(dict.fromkeys(job_ids))
        await pubsub.subscribe(*channels)
        confirmed = 0
        while confirmed < len(channels):
            message = await pubsub.get_message(timeout=None)
            if message is not None and message.get("type") == "subscribe":
                confirmed += 1
        yield StatusSubscription(pubsub)
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated


async def call_until_done(
    subscription: StatusSubscription,
    read_statuses: Callable[[list[str]], Awaitable[list[Status | None]]],
    keys: list[str],
    key_of: Callable[[str], str],
    callback: ListenCallback,
    poll_interval: float,
) -> None:
    """Call ``callback(key, status)`` with the stored statuses, then with each change, until it is truthy.

    The stored statuses are read again whenever ``poll_interval`` passes without a published one.
    """
    while True:
        for key, status in zip(keys, await read_statuses(keys), strict=True):
            if status is not None and await _stops(callback, key, status):
                return
        while (change := await subscription.next_change(poll_interval)) is not None:
            if await _stops(callback, key_of(change[0]), change[1]):
                return


def watcher(redis: Redis, job_id: Callable[[str], str], poll_interval: float) -> WatchJobs:
    """How :func:`~litestar_saq.backends.waiting.map_jobs` waits on Redis: a published status, or a poll."""

    @contextlib.asynccontextmanager
    async def watch(keys: list[str]) -> AsyncIterator[WaitForChange]:
        async with status_subscription(redis, [job_id(key) for key in keys]) as subscription:

            async def until_change(_unfinished: list[str]) -> None:
                await subscription.until_change(poll_interval)

            yield until_change

    return watch


class RedisJobWaits(WaitsOnChanges, SAQRedisQueue):
    """SAQ's ``RedisQueue`` with ``listen`` and ``map`` that miss no status (see the module)."""

    async def listen_until(self, keys: list[str], callback: ListenCallback, poll_interval: float) -> None:
        """Call ``callback(key, status)`` as the module says (subscribe, read, then published statuses).

        The stored statuses are read again after every ``poll_interval`` without a published one.
        """
        async with status_subscription(self.redis, [self.job_id(key) for key in keys]) as subscription:
            await call_until_done(
                subscription, self._statuses, keys, self.job_key_from_id, callback, poll_interval
            )

    async def _statuses(self, keys: list[str]) -> list[Status | None]:
        return [None if job is None else job.status for job in await self.jobs(keys)]

    def watch_jobs(self, poll_interval: float) -> WatchJobs:
        """Subscribe to the jobs' status channels before their first read; poll every ``poll_interval``."""
        return watcher(self.redis, self.job_id, poll_interval)


async def _stops(callback: ListenCallback, key: str, status: Status) -> bool:
    outcome = callback(key, status)
    if inspect.isawaitable(outcome):
        outcome = await outcome
    return bool(outcome)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
