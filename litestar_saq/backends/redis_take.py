"""Taking a job from Redis so that a cancelled dequeue never leaves the job taken.

SAQ's dequeue moves a job id from the queued list to the active list (BLMOVE) and then reads the job.
Cancelling the caller in the middle (a worker stopping its idle slots) used to lose the reply of a
BLMOVE that had already moved an id, stranding the job in the active list until the sweep found it,
and redis-py can lose a cancellation that lands inside a blocking read, so the dequeue went on.

Here the BLMOVE runs shielded: a cancelled caller returns at once, the move finishes by itself (within
one block slice), and an id it took is put back at the head of the queued list. The same happens to
an id whose job was being read when the caller was cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

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

    @property
    def waiting(self) -> int:
        """How many takes are blocked in Redis right now."""
        return len(self._blocked)

    async def take(self, block_s: float) -> Any:
        """Move the oldest queued id to the active list, waiting up to ``block_s``; ``None`` if none came."""
        move = asyncio.ensure_future(self._blocking_move(round(block_s, 3)))
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

    async def _blocking_move(self, block_s: float) -> Any:
        pool = self._redis.connection_pool
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]  # redis-py: decorator drops the types
        self._blocked.add(connection)
        try:
            await connection.send_command(
                "BLMOVE", self._queued_key, self._active_key, "LEFT", "RIGHT", block_s
            )
            return await connection.read_response()
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
        job_id = move.result()
        if job_id is not None:
            self.give_back(job_id)

    async def _move_back(self, job_id: Any) -> None:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.lrem(self._active_key, 1, job_id)
                pipe.lpush(self._queued_key, job_id)
                await pipe.execute()
        except Exception:
            logger.exception("could not put job %r back on its queue; the sweep will recover it", job_id)
