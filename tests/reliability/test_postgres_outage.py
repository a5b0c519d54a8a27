"""PostgreSQL going away under a connected queue: enqueue fails fast and clearly, and recovers after."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from saq.job import Job

from litestar_saq import BrokerUnavailableError
from litestar_saq.backends.asyncpg import AsyncpgQueue
from tests.support.poll import wait_until


class CuttableProxy:
    """A TCP proxy to PostgreSQL that a test can cut (close every connection, refuse new ones)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.server: asyncio.Server | None = None
        self.port = 0
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
        for writer in list(self.writers):
            writer.close()
        self.server = None

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(*self.target)
        self.writers.update({client_writer, server_writer})

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            writer.close()

        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))


@pytest.fixture
async def proxy(database_url: str) -> AsyncIterator[CuttableProxy]:
    parts = urlsplit(database_url)
    proxy = CuttableProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    yield proxy
    if proxy.server is not None:
        await proxy.cut()


async def test_enqueue_while_postgres_is_down_fails_fast_naming_queue_and_host(
    proxy: CuttableProxy, database_url: str, queue_name: str
) -> None:
    parts = urlsplit(database_url)
    dsn = f"postgresql://{parts.username}:pw-not-shown@127.0.0.1:{proxy.port}{parts.path}"
    queue = AsyncpgQueue.from_url(dsn, name=queue_name, connect_timeout=3)
    await queue.connect()
    job = await queue.enqueue("task")
    assert job is not None

    await proxy.cut()
    started = time.monotonic()
    with pytest.raises(BrokerUnavailableError) as excinfo:
        await queue.enqueue("task")
    assert time.monotonic() - started < 5
    message = str(excinfo.value)
    assert repr(queue_name) in message
    assert "127.0.0.1" in message
    assert str(proxy.port) in message
    assert "pw-not-shown" not in message

    await proxy.start()  # the database is back on the same address: enqueues work again

    async def enqueue_when_back() -> Job | None:
        with contextlib.suppress(BrokerUnavailableError):
            return await queue.enqueue("task")
        return None

    await wait_until(enqueue_when_back, timeout=10, interval=0.1, what="an enqueue to work again")
    await queue.disconnect()
