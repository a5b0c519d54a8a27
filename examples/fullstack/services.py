"""Application resources that handlers and tasks share through ``app.state``."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Outbox:
    """A stand-in for an email provider: it keeps what it "sent" so the page can show it."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    delay_s: float = 0.2

    async def send(self, *, to: str, subject: str, body: str) -> None:
        await asyncio.sleep(self.delay_s)  # the latency of a real provider's API
        self.sent.append({"to": to, "subject": subject, "body": body, "at": time.time()})


class MemoryUsers:
    """Users kept in memory, for runs without PostgreSQL."""

    def __init__(self) -> None:
        self.emails: set[str] = set()

    async def add(self, email: str, connection: Any = None) -> bool:
        if email in self.emails:
            return False
        self.emails.add(email)
        return True

    async def count(self) -> int:
        return len(self.emails)


class PostgresUsers:
    """Users in a PostgreSQL table, written on the caller's connection so a transaction spans both."""

    def __init__(self, pool: Any, table: str = "example_users") -> None:
        self.pool = pool
        self.table = table

    async def create_table(self) -> None:
        await self.pool.execute(f'CREATE TABLE IF NOT EXISTS "{self.table}" (email TEXT PRIMARY KEY)')

    async def add(self, email: str, connection: Any) -> bool:
        status = await connection.execute(
            f'INSERT INTO "{self.table}" (email) VALUES ($1) ON CONFLICT DO NOTHING', email
        )
        return bool(status.endswith(" 1"))

    async def count(self) -> int:
        return int(await self.pool.fetchval(f'SELECT count(*) FROM "{self.table}"'))
