"""What the example's tasks get injected: the mail service and a database session per job."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from litestar.datastructures import State

from examples.fullstack.services import MemoryUsers, Outbox, PostgresUsers


def provide_outbox(state: State) -> Outbox:
    """The app's mail service, opened by the app's startup hook in every process that runs workers."""
    outbox: Outbox = state.outbox
    return outbox


@dataclass
class UsersSession:
    """The user store for one job: on PostgreSQL, one connection inside one transaction."""

    users: MemoryUsers | PostgresUsers
    connection: Any = None

    async def count(self) -> int:
        if self.connection is not None and isinstance(self.users, PostgresUsers):
            return int(await self.connection.fetchval(f'SELECT count(*) FROM "{self.users.table}"'))
        return await self.users.count()


async def provide_db(state: State) -> AsyncIterator[UsersSession]:
    """A session per job, committed when the job succeeds and rolled back when it raises."""
    users = state.users
    if not isinstance(users, PostgresUsers):
        yield UsersSession(users)
        return
    async with users.pool.acquire() as connection, connection.transaction():
        yield UsersSession(users, connection)
