"""Waiting for jobs without polling: ``listen``, ``apply`` and ``map`` woken by per-job notifications.

A client marks the jobs it waits for (see ``WAITED`` in :mod:`~litestar_saq.backends.asyncpg_schema`);
their finish then notifies ``saq-done:<queue>`` with the job key. Jobs finished by SAQ's own psycopg
workers send no such notification, so every wait also re-reads the jobs each ``poll_interval``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from saq.job import TERMINAL_STATUSES, UNSUCCESSFUL_TERMINAL_STATUSES, Job, Status, get_default_job_key
from saq.queue import JobError

from litestar_saq.backends.asyncpg_base import AsyncpgQueueBase

if TYPE_CHECKING:
    from saq.types import ListenCallback

__all__ = ("AsyncpgWaitingQueue",)


class AsyncpgWaitingQueue(AsyncpgQueueBase):
    """The waiting half of ``AsyncpgQueue``: callers wake when their jobs finish, not on the next poll."""

    async def listen(
        self,
        job_keys: Iterable[str],
        callback: ListenCallback,
        timeout: float | None = 10,
        poll_interval: float = 0.5,
    ) -> None:
        """Call ``callback(job_id, status)`` as ``job_keys`` change until it returns truthy.

        Finished jobs wake the wait at once; ``poll_interval`` is the safety net for jobs finished by
        workers that send no notification (SAQ's own psycopg workers).
        """
        keys = list(job_keys)
        async with self._watching(keys) as changed:
            await asyncio.wait_for(self._watch(keys, callback, changed, poll_interval), timeout or None)

    async def _watch(
        self, keys: list[str], callback: ListenCallback, changed: asyncio.Event, poll_interval: float
    ) -> None:
        while True:
            changed.clear()
            for job in await self.jobs(keys):
                if job is None:
                    continue
                stop = callback(job.id, job.status)
                if asyncio.iscoroutine(stop):
                    stop = await stop
                if stop:
                    return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(changed.wait(), poll_interval)

    async def map(
        self,
        job_or_func: str | Job,
        iter_kwargs: Sequence[dict[str, Any]],
        timeout: float | None = None,
        return_exceptions: bool = False,
        poll_interval: float = 0.5,
        **kwargs: Any,
    ) -> list[Any]:
        """Enqueue one job per item of ``iter_kwargs`` and return their results in order, as SAQ does.

        Waits on the jobs' notifications; ``poll_interval`` is the safety-net poll.
        """
        job_kwargs = [
            {"timeout": timeout, "key": kwargs.get("key", "") or get_default_job_key(), **kwargs, **item}
            for item in iter_kwargs
        ]
        keys = [item["key"] for item in job_kwargs]

        async def collect() -> list[Any]:
            await asyncio.gather(*(self.enqueue(job_or_func, **item) for item in job_kwargs))
            pending = object()
            results: dict[str, Any] = dict.fromkeys(keys, pending)
            async with self._watching(keys) as changed:
                while remaining := [key for key, value in results.items() if value is pending]:
                    changed.clear()
                    for key, job in zip(remaining, await self.jobs(remaining), strict=True):
                        if job is None:
                            results[key] = None
                        elif job.status in UNSUCCESSFUL_TERMINAL_STATUSES:
                            if not return_exceptions:
                                raise JobError(job)
                            results[key] = JobError(job)
                        elif job.status in TERMINAL_STATUSES:
                            results[key] = job.result
                    if any(value is pending for value in results.values()):
                        await _first_of(changed.wait(), asyncio.sleep(poll_interval))
            return list(results.values())

        return await asyncio.wait_for(collect(), timeout)

    @contextlib.asynccontextmanager
    async def _watching(self, keys: list[str]) -> AsyncIterator[asyncio.Event]:
        """Mark ``keys`` as waited for and yield an event set whenever one of them finishes.

        The mark comes before the caller's first read: a finish after it notifies, one before it is read.
        """
        changed = asyncio.Event()
        for key in keys:
            self._done_events.setdefault(key, set()).add(changed)
        try:
            if self._listener is not None:
                await self._listener.subscribe(self._done_channel, self._on_done_notice)
            if keys:
                async with self._connection() as connection:
                    await connection.execute(self._sql.mark_waited, keys, self.name)
            yield changed
        finally:
            for key in keys:
                events = self._done_events.get(key)
                if events is not None:
                    events.discard(changed)
                    if not events:
                        del self._done_events[key]
            if not self._done_events and self._listener is not None:
                await self._listener.unsubscribe(self._done_channel)

    def _on_done_notice(self, payload: str) -> None:
        for event in self._done_events.get(payload, ()):
            event.set()


async def _first_of(*awaitables: Any) -> None:
    """Wait until the first of ``awaitables`` is done and cancel the others."""
    tasks = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def is_terminal_status(_job_id: str, status: Status) -> bool:
    """A ``listen`` callback that stops once the job is complete, failed or aborted."""
    return status in TERMINAL_STATUSES
