"""Waiting for Redis jobs (``listen``, ``job.refresh(until_complete=…)``, ``apply``, ``map``) without a gap.

SAQ's ``RedisQueue.listen`` reads the job, then subscribes to its status channel through a shared
pub/sub task: a status published between the read and the moment the subscription takes effect is
never seen, and the caller waits for its whole timeout (``refresh(until_complete=5)`` of a job a fast
worker finished meanwhile). Here each wait has a subscription of its own, and the order is:

1. subscribe to the jobs' channels and wait until Redis confirms every subscription;
2. read the jobs' stored statuses (what was published before step 1 is seen here);
3. take the statuses published since, and read the stored ones again whenever ``poll_interval``
   passes without one (a safety net: e.g. a status published while the pub/sub connection dropped).

The subscription is read by a task of its own, which the waiting caller never cancels: on Python 3.11
a cancellation that lands in redis-py's connect or send (its ``asyncio.wait_for``) can be lost, and a
``listen(timeout=None)`` cancelled there went on waiting for ever. The caller waits on plain futures
instead (the stored statuses too are read in a task of their own, see ``read_waited``), and when the
wait ends, however it ends (returned, timed out, cancelled), it closes the subscription: the reading
task stops and its connection is closed, so no subscription is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
from collections import deque
from typing import TYPE_CHECKING, Any

from saq.job import Status
from saq.queue.redis import RedisQueue as SAQRedisQueue

from litestar_saq.backends.waiting import WaitForChange, WaitsOnChanges, WatchJobs

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

    from redis.asyncio.client import Redis
    from redis.asyncio.connection import AbstractConnection
    from saq.types import ListenCallback

__all__ = ("RedisJobWaits", "StatusSubscription", "call_until_done", "status_subscription", "watcher")

logger = logging.getLogger("litestar_saq")

_READING: set[asyncio.Task[None]] = set()
"""The subscriptions' reading tasks until they end (a closed subscription's reader ends on its own)."""


class StatusSubscription:
    """The statuses published on a set of job channels, read by a task of its own on one connection.

    Args:
        redis: the queue's client (a connection is taken from its pool for the subscription).
        channels: the job channels to subscribe to.
    """

    def __init__(self, redis: Redis, channels: Sequence[str]) -> None:
        self._pool = redis.connection_pool
        self._channels = list(dict.fromkeys(channels))
        self._changes: deque[tuple[str, Status]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self.confirmed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        """Done once Redis confirmed every subscription, or once subscribing failed (then: polls only)."""
        self.reader = asyncio.ensure_future(self._read())
        _READING.add(self.reader)  # the loop keeps only weak references to tasks
        self.reader.add_done_callback(_READING.discard)

    async def next_change(self, timeout: float) -> tuple[str, Status] | None:
        """The next ``(job id, status)`` published, or ``None`` if ``timeout`` seconds pass without one."""
        if not self._changes:
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            timer = loop.call_later(timeout, _resolve, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        return self._changes.popleft() if self._changes else None

    async def until_change(self, timeout: float) -> None:
        """Return once a status was published, or after ``timeout`` seconds."""
        await self.next_change(timeout)

    def close(self) -> None:
        """Stop reading and close the subscription's connection (at once; nothing here waits)."""
        self._closed = True
        self.reader.cancel()  # if this cancellation is lost (see the module), the reader sees _closed

    async def _read(self) -> None:
        connection: AbstractConnection | None = None
        try:
            connection = await self._pool.get_connection()  # type: ignore[no-untyped-call]  # redis-py: decorator drops the types
            unconfirmed = set(self._channels)
            if not self._closed:
                await connection.send_command("SUBSCRIBE", *self._channels)
            while not self._closed:
                # math.inf: no read timeout, not even the client's socket_timeout (an idle wait is fine)
                reply = await connection.read_response(timeout=math.inf, push_request=True)
                self._on_reply(reply, unconfirmed)
        except BaseException as exc:
            if not isinstance(exc, Exception):
                if not self.confirmed.done():
                    self.confirmed.cancel()
                raise
            # No subscription (Redis failing over, a dropped connection): the wait goes on with its
            # polls, whose reads retry as every client call does, and fail the wait if Redis stays away.
            if not self._closed:
                logger.debug("a job status subscription ended: %r; the wait falls back to polling", exc)
            if not self.confirmed.done():
                self.confirmed.set_result(None)
        finally:
            if connection is not None:
                # A subscribed connection never goes back to the pool as it is.
                await connection.disconnect(nowait=True)
                await self._pool.release(connection)

    def _on_reply(self, reply: Any, unconfirmed: set[str]) -> None:
        if not isinstance(reply, (list, tuple)) or len(reply) < 3:
            return
        kind, channel = _text(reply[0]), _text(reply[1])
        if kind == "subscribe":
            unconfirmed.discard(channel)
            if not unconfirmed and not self.confirmed.done():
                self.confirmed.set_result(None)
        elif kind == "message":
            self._changes.append((channel, Status[_text(reply[2]).upper()]))
            if self._waiter is not None:
                _resolve(self._waiter)


@contextlib.asynccontextmanager
async def status_subscription(redis: Redis, job_ids: Sequence[str]) -> AsyncIterator[StatusSubscription]:
    """Subscribe to the status channels of ``job_ids`` and yield once Redis confirmed each of them."""
    subscription = StatusSubscription(redis, job_ids)
    try:
        await subscription.confirmed
        yield subscription
    finally:
        subscription.close()


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
        return [None if job is None else job.status for job in await self.read_waited(keys)]

    def watch_jobs(self, poll_interval: float) -> WatchJobs:
        """Subscribe to the jobs' status channels before their first read; poll every ``poll_interval``."""
        return watcher(self.redis, self.job_id, poll_interval)


async def _stops(callback: ListenCallback, key: str, status: Status) -> bool:
    outcome = callback(key, status)
    if inspect.isawaitable(outcome):
        outcome = await outcome
    return bool(outcome)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
