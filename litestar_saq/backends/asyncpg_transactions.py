"""Enqueueing inside the caller's own transaction: the job row and its NOTIFY commit or roll back with it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from saq.job import Job

    from litestar_saq.backends.asyncpg import AsyncpgQueue
    from litestar_saq.backends.asyncpg_schema import Executor

__all__ = ("caller_connection", "enqueue_in_session", "on_caller_connection")

_caller_connection: ContextVar[Executor | None] = ContextVar("saq_asyncpg_connection", default=None)


@contextlib.contextmanager
def on_caller_connection(connection: Executor) -> Iterator[None]:
    """Have the enqueues of this context write on ``connection`` (an asyncpg connection in a transaction)."""
    token = _caller_connection.set(connection)
    try:
        yield
    finally:
        _caller_connection.reset(token)


def caller_connection() -> Executor | None:
    """The connection set by :func:`on_caller_connection`, if any."""
    return _caller_connection.get()


async def enqueue_in_session(
    queue: AsyncpgQueue, session: Any, job_or_func: str | Job, **kwargs: Any
) -> Job | None:
    """Enqueue a job inside a SQLAlchemy ``AsyncSession``'s transaction (asyncpg driver only).

    The job row and its NOTIFY commit or roll back with the session.
    """
    connection = await session.connection()
    driver_connection = (await connection.get_raw_connection()).driver_connection
    if not driver_connection.is_in_transaction():
        # SQLAlchemy sends BEGIN lazily, with its first statement: send one so the job joins it.
        await connection.exec_driver_sql("SELECT 1")
    return await queue.enqueue(job_or_func, connection=driver_connection, **kwargs)
