"""Deferred "job started" writes: a job that finishes quickly never pays for its own start.

SAQ's Worker calls ``job.update(status=ACTIVE)`` right after ``dequeue`` to store ``started``,
``attempts`` and ``worker_id``. Dequeue has already stored the job as active with ``started`` and
``touched``, so that write only adds the attempt count and the worker id. It is held back for a short
while (50 ms at most, less than half the job's timeout or heartbeat): if the job finishes, retries or reports
progress first, that write carries the same fields and the start write is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import logging
import operator
from collections.abc import Awaitable, Callable
from typing import Any

from saq.job import Job, Status

__all__ = ("DeferredStarts",)

logger = logging.getLogger("litestar_saq.asyncpg")

MAX_DELAY_S = 0.05
"""The longest a start write waits. Meanwhile other processes see the dequeue's ``started`` but no
``worker_id``, so a worker killed within this window leaves a job that only its timeout recovers."""

VOLATILE = ("started", "touched", "worker_id", "status", "attempts")
_stable_fields = operator.attrgetter(
    *(field.name for field in dataclasses.fields(Job) if field.name not in VOLATILE)
)
"""The fields a start write leaves as dequeue stored them, read in one call (cheaper than ``to_dict``)."""


class DeferredStarts:
    """Remember jobs as dequeue stored them, and hold back the Worker's start write for each."""

    def __init__(self, write: Callable[[Job], Awaitable[None]], queue_name: str) -> None:
        self._write = write
        self._queue_name = queue_name
        self._dequeued: dict[str, tuple[tuple[Any, ...], int, int]] = {}
        self._pending: dict[str, tuple[Job, asyncio.TimerHandle]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def dequeued(self, job: Job) -> None:
        """Record ``job`` as dequeue stored it."""
        self._dequeued[job.key] = (_stable_fields(job), job.attempts, job.started)

    def is_dequeued(self, key: str) -> bool:
        """Whether the job ``key`` was dequeued here and has had no write since."""
        return key in self._dequeued

    def defer(self, job: Job) -> bool:
        """Hold back the start write of ``job`` (a copy of it) if it only adds the Worker's start fields."""
        stored = self._dequeued.pop(job.key, None)
        if stored is None:
            return False
        fields, attempts, started = stored
        try:
            if _stable_fields(job) != fields:
                return False
        except ValueError:  # a value without a single truth value for ==, e.g. an array
            return False
        if job.attempts - attempts not in (0, 1) or abs(job.started - started) >= 1000:
            return False
        delay = min([MAX_DELAY_S, *(limit / 2 for limit in (job.timeout, job.heartbeat) if limit)])
        handle = asyncio.get_running_loop().call_later(delay, self._flush_later, job.key)
        self._pending[job.key] = (copy.copy(job), handle)
        return True

    def overlay(self, stored: Job | None) -> Job | None:
        """Return the held-back start of ``stored`` if there is one, so this process reads its own writes."""
        if stored is None or stored.status != Status.ACTIVE:
            return stored
        pending = self._pending.get(stored.key)
        return stored if pending is None else copy.copy(pending[0])

    def forget(self, key: str) -> None:
        """Drop what is remembered for ``key``: a newer write for it is on its way."""
        self._dequeued.pop(key, None)
        pending = self._pending.pop(key, None)
        if pending is not None:
            pending[1].cancel()

    async def flush(self) -> None:
        """Write every held-back start now, and wait for writes already under way."""
        pending, self._pending = self._pending, {}
        for job, handle in pending.values():
            handle.cancel()
            await self._write(job)
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task

    def _flush_later(self, key: str) -> None:
        pending = self._pending.pop(key, None)
        if pending is None:
            return
        task = asyncio.create_task(self._write_logged(pending[0]))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write_logged(self, job: Job) -> None:
        try:
            await self._write(job)
        except Exception:
            logger.exception("queue %r: could not store the start of job %s", self._queue_name, job.key)
