"""asyncpg itself for the PostgreSQL queue: the import, its connection errors, pools and connections.

Importing this module without asyncpg raises ``MissingDependencyException`` naming the
``litestar-saq[postgres]`` extra.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from litestar_saq.backends.deadline import within
from litestar_saq.dsn import describe_broker
from litestar_saq.exceptions import BrokerUnavailableError, InvalidValueError, MissingExtraError, UsageError

try:
    import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
except ImportError as exc:  # pragma: no cover - exercised by the missing-extra test
    raise MissingExtraError(
        "asyncpg", install="litestar-saq[postgres]", needed_for="The PostgreSQL queue (postgresql:// DSNs)"
    ) from exc

if TYPE_CHECKING:
    from litestar_saq.backends.asyncpg_schema import Executor

__all__ = (
    "BROKER_DOWN_ERRORS",
    "CONNECTION_ERRORS",
    "QueuePool",
    "is_alive",
    "is_asyncpg_connection",
)

T = TypeVar("T")
CONNECTION_ERRORS = (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
BROKER_DOWN_ERRORS = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
)
"""Errors that mean "the database is not there", as opposed to an error in what was asked of it."""


class QueuePool:
    """A queue's asyncpg pool: the one it was given, or one it opens for ``url`` and owns.

    Args:
        pool: an initialised ``asyncpg.Pool``, or ``None`` to open one for ``url``.
        url: the DSN to open a pool for.
        queue_name: the queue, for error messages.
        manage: whether :meth:`close` closes the pool (default: only one opened here).
        sizes: the opened pool's minimum and maximum size.
        connect_timeout: seconds to wait for a connection.
        options: more keyword arguments for ``asyncpg.create_pool``.
    """

    def __init__(
        self,
        pool: Any,
        url: str | None,
        queue_name: str,
        manage: bool | None,
        sizes: tuple[int, int],
        connect_timeout: float,
        options: Mapping[str, Any],
    ) -> None:
        if (pool is None) == (url is None):
            raise InvalidValueError(f"queue {queue_name!r}: give exactly one of pool= or url=")
        self.pool: Any = pool
        self._url, self._queue_name = url, queue_name
        self._manage = manage if manage is not None else pool is None
        self._sizes = sizes
        self._connect_timeout = connect_timeout
        self._options = dict(options)
        self._session_url: str | None = None
        self._session_pool: Any = None

    def open_sessions_on(self, session_url: str | None) -> None:
        """Run LISTEN and the sweep lock on a direct DSN, so ``url`` may go through a pooler.

        With a ``session_url``, ``url`` (or the given pool) may be PgBouncer in transaction pooling
        mode: the pool opened for ``url`` caches no prepared statements (each transaction may land on
        another server connection) and the queue keeps no session state on it.
        """
        self._session_url = session_url and session_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        if session_url is not None:
            self._options.setdefault("statement_cache_size", 0)

    @property
    def sessions(self) -> Any:
        """The pool for LISTEN and the sweep lock: the direct one if there is a ``session_url``."""
        return self._session_pool if self._session_url is not None else self.pool

    async def open(self, prepare: Callable[[Executor], Awaitable[None]]) -> tuple[Any, Any]:
        """Open the pool if there is none yet and run ``prepare`` (the migrations) on one connection.

        Returns the pool and the pool for sessions (:attr:`sessions`).

        Raises:
            BrokerUnavailableError: PostgreSQL at ``url`` cannot be reached; the message has no password.
        """
        opened = self.pool is None
        try:
            if opened:
                self.pool = await asyncpg.create_pool(
                    self._url,
                    min_size=self._sizes[0],
                    max_size=self._sizes[1],
                    timeout=self._connect_timeout,
                    **{"reset": _keep_session, **self._options},
                )
            async with self.pool.acquire(timeout=self._connect_timeout) as connection:
                await prepare(connection)
            if self._session_url is not None and self._session_pool is None:
                # The listener and the sweep lock hold one connection each, for as long as they run.
                self._session_pool = await asyncpg.create_pool(
                    self._session_url, min_size=1, max_size=2, timeout=self._connect_timeout
                )
        except BaseException as exc:
            if opened and self.pool is not None:
                await self.pool.close()
                self.pool = None
            if isinstance(exc, CONNECTION_ERRORS) and self._url is not None:
                raise BrokerUnavailableError(self._failure(exc)) from None
            raise
        return self.pool, self.sessions

    async def close(self) -> None:
        """Close the pool if the queue manages it (and the session pool), waiting up to 10 s for each."""
        session_pool, self._session_pool = self._session_pool, None
        if session_pool is not None:
            await _close_within(session_pool, 10)
        if not self._manage:
            return
        await _close_within(self.pool, 10)
        if self._url is not None:
            self.pool = None

    @contextlib.asynccontextmanager
    async def connection(self, connection: Executor | None = None) -> AsyncIterator[Executor]:
        """Yield ``connection`` if given, else a pooled one."""
        if connection is not None:
            yield connection
        else:
            if self.pool is None:
                raise UsageError(f"queue {self._queue_name!r} is not connected; await queue.connect() first")
            async with self.pool.acquire() as acquired:
                yield acquired

    async def answer(self, operation: Awaitable[T], failed: str) -> T:
        """Await ``operation`` for up to ``connect_timeout`` seconds.

        Raises:
            BrokerUnavailableError: PostgreSQL did not answer; the message names the queue and ``failed``.
        """
        try:
            return await within(operation, self._connect_timeout)  # no task of its own (3.11+)
        except BROKER_DOWN_ERRORS as exc:
            raise BrokerUnavailableError(
                f"queue {self._queue_name!r}: {failed}: PostgreSQL at {self.describe()} did not answer "
                f"({type(exc).__name__}). The job was not enqueued; retry later or check the database."
            ) from exc

    def describe(self) -> str:
        """Where the pool connects to, without the password."""
        return describe_broker(self._url if self._url is not None else self.pool)

    def _failure(self, exc: BaseException) -> str:
        assert self._url is not None
        reason = f"{type(exc).__name__}: {exc}"
        password = urlsplit(self._url).password
        if password:
            reason = reason.replace(password, "***")
        return f"queue {self._queue_name!r}: cannot connect to PostgreSQL at {self.describe()}: {reason}"


async def _close_within(pool: Any, seconds: float) -> None:
    try:
        await asyncio.wait_for(pool.close(), seconds)
    except asyncio.TimeoutError:
        pool.terminate()


async def _keep_session(_connection: Any) -> None:
    """Release a connection to our own pool without asyncpg's reset query (one round trip less per use).

    asyncpg still rolls back an open transaction; the queue leaves no other session state behind:
    it unlistens and unlocks before it releases the connections that had LISTENs or locks.
    """


def is_alive(connection: Any) -> bool:
    """Whether a pooled connection is open (asyncpg detaches, and releases, one that died)."""
    try:
        return not connection.is_closed()
    except asyncpg.InterfaceError:
        return False


def is_asyncpg_connection(value: object) -> bool:
    """Whether ``value`` is an asyncpg connection (or a pool's proxy of one)."""
    return isinstance(value, (asyncpg.Connection, asyncpg.pool.PoolConnectionProxy))
