"""Taking a job from Redis so that a cancelled dequeue never leaves the job taken.

SAQ's dequeue moves a job id from the queued list to the active list (BLMOVE) and then reads the job.
Cancelling the caller in the middle (a worker stopping its idle slots) used to lose the reply of a
BLMOVE that had already moved an id, stranding the job in the active list until the sweep found it,
and redis-py can lose a cancellation that lands inside a blocking read, so the dequeue went on.

A take first runs the ``TAKE`` script, which moves up to N ids and returns them with their blobs
in one round trip; only when the queue is empty does it block in BLMOVE. Either runs shielded: a
cancelled caller returns at once, the move finishes by itself (within one block slice), and the ids
it took are put back at the head of the queued list. The same happens to an id whose job was being
read when the caller was cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from litestar_saq.backends.redis_scripts import TAKE, LuaScript

if TYPE_CHECKING:
    from redis.asyncio.client import Redis
    from redis.asyncio.connection import AbstractConnection

__all__ = ("JobTaker",)

logger = logging.getLogger("litestar_saq")


class JobTaker:
    """Moves job ids from ``queued_key`` to ``active_key``, and back when the taker was cancelled.

    Each take runs BLMOVE on a connection of its own from the client's pool, without the client's
    retries, so that ``settle()`` can end the takes still blocked when the queue disconnects (a retry
    would reconnect behind the closed pool).

    Args:
        redis: the queue's client.
        queued_key: the queue's list of waiting job ids.
        active_key: the queue's list of taken job ids.
    """

    def __init__(self, redis: Redis, queued_key: str, active_key: str) -> None:
        self._redis = redis
        self._queued_key = queued_key
        self._active_key = active_key
        self._in_flight: set[asyncio.Future[Any]] = set()
        self._blocked: set[AbstractConnection] = set()
        self._take_script = LuaScript(redis, TAKE)

    @property
    def waiting(self) -> int:
        """How many takes are blocked in Redis right now."""
        return len(self._blocked)

    async def take(self, block_s: float, count: int = 1) -> list[tuple[Any, Any]]:
        """Move up to ``count`` of the oldest queued ids to the active list, as ``(id, blob)`` pairs.

        Waits up to ``block_s`` for one when the queue is empty (``[]`` if none came); the blob of an id
        taken by the blocking wait is ``None`` (the caller reads it).
        """
        move = asyncio.ensure_future(self._move(count, round(block_s, 3)))
        try:
            return await asyncio.shield(move)
        except asyncio.CancelledError:
            self._track(move)
            move.add_done_callback(self._give_back_what_was_taken)
            raise

    def give_back(self, job_id: Any) -> None:
        """Put ``job_id`` back at the head of the queued list (its taker was cancelled before using it)."""
        self._track(asyncio.ensure_future(self._move_back(job_id)))

    async def settle(self, timeout: float) -> None:
        """Let takes under way end within ``timeout``, then cut the ones still blocked (before closing)."""
        if self._in_flight:
            await asyncio.wait(list(self._in_flight), timeout=timeout)
        for connection in list(self._blocked):
            await connection.disconnect()
        if self._in_flight:
            await asyncio.wait(list(self._in_flight), timeout=timeout)

    async def _move(self, count: int, block_s: float) -> list[tuple[Any, Any]]:
        pool = self._redis.connection_pool
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]  # redis-py: decorator drops the types
        self._blocked.add(connection)
        try:
            keys = (self._queued_key, self._active_key)
            taken = await self._take_script.run_on(connection, keys, (count,))
            if taken:
                return list(zip(taken[::2], taken[1::2], strict=True))
            await connection.send_command(
                "BLMOVE", self._queued_key, self._active_key, "LEFT", "RIGHT", block_s
            )
            job_id = await connection.read_response()
            return [] if job_id is None else [(job_id, None)]
        except BaseException:
            await connection.disconnect()  # a reply half read must not be read by the next command
            raise
        finally:
            self._blocked.discard(connection)
            await pool.release(connection)

    def _track(self, future: asyncio.Future[Any]) -> None:
        self._in_flight.add(future)
        future.add_done_callback(self._in_flight.discard)

    def _give_back_what_was_taken(self, move: asyncio.Future[Any]) -> None:
        if move.cancelled() or move.exception() is not None:
            return  # nothing was taken, or the connection failed (the sweep checks the active list)
        for job_id, _ in reversed(move.result()):  # back at the head, in their order
            self.give_back(job_id)

    async def _move_back(self, job_id: Any) -> None:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.lrem(self._active_key, 1, job_id)
                pipe.lpush(self._queued_key, job_id)
                await pipe.execute()
        except Exception:
            logger.exception("could not put job %r back on its queue; the sweep will recover it", job_id)
