"""One LISTEN connection per queue that survives its backend being terminated."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

__all__ = ("ENQUEUE", "NotificationListener", "channel_name")

logger = logging.getLogger("litestar_saq.asyncpg")

ENQUEUE = "saq:enqueue"
"""The payload SAQ's queues NOTIFY on ``saq:<queue>`` after an enqueue."""
MAX_CHANNEL_BYTES = 63
"""PostgreSQL truncates identifiers (and so channel names) to 63 bytes."""


def channel_name(name: str) -> str:
    """Return ``name`` cut to the 63 bytes PostgreSQL keeps, so NOTIFY and LISTEN agree on it."""
    encoded = name.encode()
    if len(encoded) <= MAX_CHANNEL_BYTES:
        return name
    return encoded[:MAX_CHANNEL_BYTES].decode(errors="ignore")


class NotificationListener:
    """Keep one pooled connection LISTENing on the subscribed channels, and reconnect when it dies.

    The connection stays acquired for as long as the listener runs: releasing it to the pool would
    run ``UNLISTEN *``. A termination listener notices a killed backend (``pg_terminate_backend``, a
    server restart) and the loop acquires a new connection and LISTENs again.
    """

    def __init__(self, pool: Any, *, queue_name: str, on_listening: Callable[[], None]) -> None:
        self._pool = pool
        self._queue_name = queue_name
        self._on_listening = on_listening
        self._handlers: dict[str, Callable[[str], None]] = {}
        self._connection: Any = None
        self._connection_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def subscribe(self, channel: str, handler: Callable[[str], None]) -> None:
        """Call ``handler(payload)`` for every notification on ``channel``; start listening if needed."""
        if self._handlers.get(channel) == handler and self._task is not None and not self._task.done():
            return  # already delivered, and listened on every (re)connection (the queue asks per dequeue)
        self._handlers[channel] = handler
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"saq-listen:{self._queue_name}")
            return
        async with self._connection_lock:
            if self._connection is not None and not self._connection.is_closed():
                await self._connection.add_listener(channel, self._dispatch)

    async def unsubscribe(self, channel: str) -> None:
        """Stop calling the handler of ``channel``."""
        if self._handlers.pop(channel, None) is None:
            return
        async with self._connection_lock:
            if self._connection is not None and not self._connection.is_closed():
                await self._connection.remove_listener(channel, self._dispatch)

    async def stop(self) -> None:
        """Stop listening and give the connection back to the pool."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._handlers.clear()

    def _dispatch(self, _connection: Any, _pid: int, channel: str, payload: str) -> None:
        handler = self._handlers.get(channel)
        if handler is not None:
            handler(payload)

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            try:
                await self._listen_until_lost()
                backoff = 0.05
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception(
                    "queue %r: LISTEN connection failed; retrying in %.2fs", self._queue_name, backoff
                )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    async def _listen_until_lost(self) -> None:
        lost = asyncio.Event()
        connection = await self._pool.acquire()
        try:
            connection.add_termination_listener(lambda _connection: lost.set())
            async with self._connection_lock:
                for channel in list(self._handlers):
                    await connection.add_listener(channel, self._dispatch)
                self._connection = connection
            self._on_listening()
            await lost.wait()
            logger.warning("queue %r: LISTEN connection was closed; listening again", self._queue_name)
        finally:
            self._connection = None
            await self._release(connection)

    async def _release(self, connection: Any) -> None:
        try:
            closed = connection.is_closed()
        except Exception:
            # asyncpg detaches a pool proxy whose connection died and releases it by itself.
            return
        if not closed:
            with contextlib.suppress(Exception):
                for channel in list(self._handlers):
                    await connection.remove_listener(channel, self._dispatch)
        await asyncio.shield(self._pool.release(connection))
