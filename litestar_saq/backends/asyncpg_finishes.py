"""Waking the callers that wait for asyncpg jobs (``listen``, ``apply``, ``map``) when the jobs finish.

A caller marks the jobs it waits for (see ``WAITED`` in :mod:`~litestar_saq.backends.asyncpg_schema`);
their finish then notifies ``saq-done:<queue>`` with the job key. Jobs finished by SAQ's own psycopg
workers send no such notification, so every wait also re-reads the jobs each ``poll_interval``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

from saq.job import Job

from litestar_saq.backends.deadline import within
from litestar_saq.backends.waiting import WaitForChange, WatchJobs

if TYPE_CHECKING:
    from saq.types import ListenCallback

    from litestar_saq.backends.asyncpg_listener import NotificationListener

__all__ = ("FinishNotices", "call_until_done", "changed_or_polled")

ReadJobs = Callable[[list[str]], Awaitable[list[Job | None]]]


class FinishNotices:
    """Per-job finish notifications on ``channel``, delivered to the callers watching those jobs.

    Args:
        channel: the queue's ``saq-done:<queue>`` channel.
        mark_waited: stores that the given jobs are waited for, so that their finish notifies.
    """

    def __init__(self, channel: str, mark_waited: Callable[[list[str]], Awaitable[None]]) -> None:
        self._channel = channel
        self._mark_waited = mark_waited
        self._events: dict[str, set[asyncio.Event]] = {}

    @contextlib.asynccontextmanager
    async def watching(
        self, keys: list[str], listener: NotificationListener | None
    ) -> AsyncIterator[asyncio.Event]:
        """Mark ``keys`` as waited for and yield an event set whenever one of them finishes.

        The mark comes before the caller's first read: a finish after it notifies, one before it is
        read. Without a ``listener`` (the queue is not connected) only the caller's polls see changes.
        """
        changed = asyncio.Event()
        for key in keys:
            self._events.setdefault(key, set()).add(changed)
        try:
            if listener is not None:
                await listener.subscribe(self._channel, self._on_notice)
            if keys:
                await self._mark_waited(keys)
            yield changed
        finally:
            for key in keys:
                events = self._events.get(key)
                if events is not None:
                    events.discard(changed)
                    if not events:
                        del self._events[key]
            if not self._events and listener is not None:
                await listener.unsubscribe(self._channel)

    def watcher(self, listener: NotificationListener | None, poll_interval: float) -> WatchJobs:
        """How :func:`~litestar_saq.backends.waiting.map_jobs` waits: a notification, or the next poll."""

        @contextlib.asynccontextmanager
        async def watch(keys: list[str]) -> AsyncIterator[WaitForChange]:
            async with self.watching(keys, listener) as changed:
                yield lambda _unfinished: changed_or_polled(changed, poll_interval)

        return watch

    def _on_notice(self, payload: str) -> None:
        for event in self._events.get(payload, ()):
            event.set()


async def call_until_done(
    read_jobs: ReadJobs,
    keys: list[str],
    callback: ListenCallback,
    changed: asyncio.Event,
    poll_interval: float,
) -> None:
    """Call ``callback(job_id, status)`` for each of ``keys`` after each change until it returns truthy."""
    while True:
        changed.clear()
        for job in await read_jobs(keys):
            if job is None:
                continue
            stop = callback(job.id, job.status)
            if asyncio.iscoroutine(stop):
                stop = await stop
            if stop:
                return
        with contextlib.suppress(asyncio.TimeoutError):
            await within(changed.wait(), poll_interval)


async def changed_or_polled(changed: asyncio.Event, poll_interval: float) -> None:
    """Wait until ``changed`` is set or ``poll_interval`` has passed, then clear ``changed``."""
    waits = [asyncio.ensure_future(changed.wait()), asyncio.ensure_future(asyncio.sleep(poll_interval))]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
    changed.clear()
