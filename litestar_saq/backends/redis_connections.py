"""Running our Lua scripts on connections a queue keeps idle, out of its client's pool.

Taking a connection from redis-py's pool and giving it back (a lock, a readiness check of the socket,
an event dispatch and metrics calls each way) cost a tenth of an enqueue. A queue keeps up to
``keep`` connections idle between its script calls instead, so a call takes one with a ``list.pop``.

- A connection that fails is dropped, and so are the idle ones (Redis restarted: all are dead); the
  call is tried again on a fresh connection from the pool, up to ``SCRIPT_ATTEMPTS`` connections
  (the scripts are safe to repeat: a job enqueued twice is a duplicate).
- With a ``timeout`` the whole call fails after that many seconds. A call on an idle connection whose
  socket timeout bounds each send and read to within ``timeout`` runs without arming a timer of its own.
- Only a plain ``ConnectionPool`` lends connections to be kept: a ``BlockingConnectionPool`` has few
  of them to share, and Sentinel's pool follows the primary on each checkout.
- ``release_all()`` gives the idle connections back to the pool (the queue's ``disconnect``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from redis.asyncio.connection import ConnectionPool
from redis.exceptions import ConnectionError, ResponseError, TimeoutError

from litestar_saq.backends.deadline import within

if TYPE_CHECKING:
    from collections.abc import Sequence

    from redis.asyncio.client import Redis
    from redis.asyncio.connection import AbstractConnection

    from litestar_saq.backends.redis_scripts import LuaScript

__all__ = ("SCRIPT_ATTEMPTS", "ScriptRunner")

SCRIPT_ATTEMPTS = 3
"""How many connections a script call tries before it fails (Redis restarted: every pooled one is dead)."""
_CONNECTION_ERRORS = (ConnectionError, TimeoutError, OSError)


class ScriptRunner:
    """Runs Lua scripts for one queue on its client's connections, keeping up to ``keep`` of them idle."""

    def __init__(self, client: Redis, keep: int) -> None:
        self._pool = client.connection_pool
        self._keep = keep if type(self._pool) is ConnectionPool else 0
        self._idle: list[AbstractConnection] = []

    async def run(
        self, script: LuaScript, keys: Sequence[Any], args: Sequence[Any], timeout: float | None = None
    ) -> Any:
        """Run ``script``; with ``timeout``, raise ``asyncio.TimeoutError`` after that many seconds."""
        connection = self._idle.pop() if self._idle else None
        if connection is None or (timeout is not None and not _bounded(connection, timeout)):
            return await self._run_with_retries(script, keys, args, connection, timeout)
        # The fast path: an idle connection whose socket timeout bounds the call (the usual case).
        started = asyncio.get_running_loop().time()
        try:
            result = await script.run_on(connection, keys, args)
        except _CONNECTION_ERRORS:
            await self._drop(connection)
            if timeout is not None:
                timeout -= asyncio.get_running_loop().time() - started
            return await self._run_with_retries(
                script, keys, args, None, timeout, attempts=SCRIPT_ATTEMPTS - 1
            )
        except ResponseError:
            await self._keep_or_release(connection)  # an error reply was read whole: the connection is fine
            raise
        except BaseException:
            await self._discard(connection)  # a reply half read must not be read by the next command
            raise
        await self._keep_or_release(connection)
        return result

    async def release_all(self) -> None:
        """Give the idle connections back to the pool."""
        idle, self._idle = self._idle, []
        for connection in idle:
            await self._pool.release(connection)

    async def _run_with_retries(
        self,
        script: LuaScript,
        keys: Sequence[Any],
        args: Sequence[Any],
        connection: AbstractConnection | None,
        timeout: float | None,
        attempts: int = SCRIPT_ATTEMPTS,
    ) -> Any:
        call = self._attempts(script, keys, args, connection, attempts)
        if timeout is None:
            return await call
        if timeout <= 0:
            call.close()
            raise asyncio.TimeoutError
        return await within(call, timeout)

    async def _attempts(
        self,
        script: LuaScript,
        keys: Sequence[Any],
        args: Sequence[Any],
        connection: AbstractConnection | None,
        attempts: int,
    ) -> Any:
        for attempt in range(1, attempts + 1):
            if connection is None:
                connection = await self._pool.get_connection()  # type: ignore[no-untyped-call]  # redis-py: decorator drops the types
            try:
                result = await script.run_on(connection, keys, args)
            except _CONNECTION_ERRORS:
                await self._drop(connection)
                connection = None
                if attempt == attempts:
                    raise
                continue
            except ResponseError:
                await self._keep_or_release(connection)
                raise
            except BaseException:
                await self._discard(connection)
                raise
            await self._keep_or_release(connection)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    async def _keep_or_release(self, connection: AbstractConnection) -> None:
        if len(self._idle) < self._keep and connection.is_connected:
            self._idle.append(connection)
        else:
            await self._pool.release(connection)

    async def _discard(self, connection: AbstractConnection) -> None:
        await connection.disconnect()
        await self._pool.release(connection)

    async def _drop(self, connection: AbstractConnection) -> None:
        """Close a failed ``connection`` and the idle ones (after a failure they are likely dead too)."""
        for idle in self._idle:
            await idle.disconnect()
        await self._discard(connection)
        await self.release_all()


def _bounded(connection: AbstractConnection, timeout: float) -> bool:
    """Whether ``connection``'s socket timeout keeps a send and a read within ``timeout`` seconds."""
    socket_timeout: float | None = getattr(connection, "socket_timeout", None)
    return socket_timeout is not None and 0 < 2 * socket_timeout <= timeout
