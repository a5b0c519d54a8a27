"""Waiting for job results, shared by the queues that wake waiters instead of polling (memory, asyncpg).

SAQ's ``Queue.map`` reads every job each ``poll_interval``; :func:`map_jobs` keeps its contract but lets
the backend say how to wait for a change, so a finished job wakes the caller at once.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from saq.job import TERMINAL_STATUSES, UNSUCCESSFUL_TERMINAL_STATUSES, Job, Status, get_default_job_key
from saq.queue import JobError, Queue

from litestar_saq.backends.deadline import within

if TYPE_CHECKING:
    from saq.types import ListenCallback

__all__ = ("WaitForChange", "WaitsOnChanges", "WatchJobs", "is_terminal_status", "map_jobs")

WaitForChange = Callable[[list[str]], Awaitable[None]]
"""Return once one of the given unfinished jobs may have changed (or a safety-net poll is due)."""
WatchJobs = Callable[[list[str]], AbstractAsyncContextManager[WaitForChange]]
"""Start watching the given jobs, before their first read, and yield how to wait for a change."""


def is_terminal_status(_job_id: str, status: Status) -> bool:
    """A ``listen`` callback that stops once the job is complete, failed or aborted."""
    return status in TERMINAL_STATUSES


async def map_jobs(
    queue: Queue,
    job_or_func: str | Job,
    iter_kwargs: Sequence[dict[str, Any]],
    defaults: Mapping[str, Any],
    timeout: float | None,
    return_exceptions: bool,
    watch: WatchJobs,
    read: Callable[[list[str]], Awaitable[list[Job | None]]],
) -> list[Any]:
    """Enqueue one job per item of ``iter_kwargs`` (over ``defaults``) and return their results in order.

    A FAILED or ABORTED job raises ``JobError`` unless ``return_exceptions``, a missing job gives
    ``None``, and ``timeout`` bounds the whole call, as in SAQ's ``Queue.map``.
    """
    jobs_kwargs = [{"timeout": timeout, **defaults, **item} for item in iter_kwargs]
    for job_kwargs in jobs_kwargs:
        job_kwargs["key"] = job_kwargs.get("key") or get_default_job_key()
    keys = [job_kwargs["key"] for job_kwargs in jobs_kwargs]

    async def enqueue_and_collect() -> list[Any]:
        await asyncio.gather(*(queue.enqueue(job_or_func, **job_kwargs) for job_kwargs in jobs_kwargs))
        results: dict[str, Any] = {}
        async with watch(keys) as wait_for_change:
            while pending := [key for key in dict.fromkeys(keys) if key not in results]:
                for key, job in zip(pending, await read(pending), strict=True):
                    if job is not None and job.status in UNSUCCESSFUL_TERMINAL_STATUSES:
                        if not return_exceptions:
                            raise JobError(job)
                        results[key] = JobError(job)
                    elif job is None or job.status in TERMINAL_STATUSES:
                        results[key] = None if job is None else job.result
                if unfinished := [key for key in pending if key not in results]:
                    await wait_for_change(unfinished)
        return [results[key] for key in keys]

    return await within(enqueue_and_collect(), timeout)


class WaitsOnChanges(Queue):
    """A queue whose ``listen``, ``map`` and ``apply`` wait for the backend to signal a change.

    The backend says how: ``listen_until`` (each job's status, then every change, to a callback) and
    ``watch_jobs`` (for :func:`map_jobs`). Both must see a change made just before they started.
    """

    @abstractmethod
    async def listen_until(self, keys: list[str], callback: ListenCallback, poll_interval: float) -> None:
        """Call ``callback(key, status)`` with each job's status, then on every change, until it is truthy."""

    @abstractmethod
    def watch_jobs(self, poll_interval: float) -> WatchJobs:
        """How to wait for the jobs of one ``map`` call; ``poll_interval``: the safety-net poll, if any."""

    async def read_waited(self, keys: list[str]) -> list[Job | None]:
        """Read the jobs a wait needs in a task of their own, so no cancellation of the waiter is lost.

        A read may open a connection, and on Python 3.11 a cancellation landing in a client library's
        ``asyncio.wait_for`` (redis-py's connect and send, a pool's acquire) can be lost: a wait (or its
        timeout, itself a cancellation) then went on polling for ever. The waiter awaits the read through
        ``asyncio.shield`` and so always gets its cancellation; the read ends by itself.
        """
        read = asyncio.ensure_future(self.jobs(keys))
        reads: set[asyncio.Future[Any]] = self.__dict__.setdefault("_waited_reads", set())
        reads.add(read)
        read.add_done_callback(reads.discard)
        read.add_done_callback(_consume_outcome)
        return await asyncio.shield(read)

    async def settle_waited_reads(self, timeout: float) -> None:
        """Let the reads of waits under way (or of waits that were cancelled) end, before a disconnect."""
        reads = list(self.__dict__.get("_waited_reads", ()))
        if reads:
            await asyncio.wait(reads, timeout=timeout)

    async def listen(
        self,
        job_keys: Iterable[str],
        callback: ListenCallback,
        timeout: float | None = 10,
        poll_interval: float = 0.5,
    ) -> None:
        """SAQ's ``Queue.listen``: ``callback(key, status)`` with each job's status, then on every change.

        Returns when the callback returns something truthy; raises ``asyncio.TimeoutError`` after
        ``timeout`` seconds (falsy: never). ``poll_interval`` is the backend's safety-net poll, if any.
        """
        keys = list(dict.fromkeys(job_keys))
        if not keys:
            return
        if timeout:  # not asyncio.wait_for: up to Python 3.11 it can lose a cancellation of the caller
            await within(self.listen_until(keys, callback, poll_interval), timeout)
        else:
            await self.listen_until(keys, callback, poll_interval)

    async def map(
        self,
        job_or_func: str | Job,
        iter_kwargs: Sequence[dict[str, Any]],
        timeout: float | None = None,
        return_exceptions: bool = False,
        poll_interval: float = 0.5,
        **kwargs: Any,
    ) -> list[Any]:
        """SAQ's ``Queue.map``: one job per item of ``iter_kwargs``, their results in order.

        Woken when the jobs change (see ``watch_jobs``) instead of reading them every ``poll_interval``.
        """
        watch = self.watch_jobs(poll_interval)
        return await map_jobs(
            self, job_or_func, iter_kwargs, kwargs, timeout, return_exceptions, watch, self.read_waited
        )


def _consume_outcome(read: asyncio.Future[Any]) -> None:
    if not read.cancelled():
        read.exception()  # retrieved: a read whose waiter was cancelled meanwhile has nobody to tell
