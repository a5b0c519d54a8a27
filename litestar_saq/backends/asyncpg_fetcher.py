"""Handing due jobs to the callers waiting in ``AsyncpgQueue.dequeue``, one batch query for all of them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from saq.job import Job, Status
from saq.utils import now

from litestar_saq.backends.asyncpg_listener import ENQUEUE
from litestar_saq.backends.deadline import within
from litestar_saq.liveness import dequeuer_id

if TYPE_CHECKING:
    from litestar_saq.backends.asyncpg_rows import QueueRows
    from litestar_saq.backends.asyncpg_starts import DeferredStarts

__all__ = ("JobCodec", "JobFetcher")

logger = logging.getLogger("litestar_saq.asyncpg")
T = TypeVar("T")

CLAIM_BEGIN = "BEGIN; SET LOCAL synchronous_commit TO off"
"""How a claim's transaction starts, in one round trip: its commit does not wait for the WAL flush.

A claim lost in a server crash leaves its jobs queued, to run again: what a worker killed mid-job
leaves too (any later durable commit, e.g. the job's finish, flushes the claim before it). Waiting for
the flush was a millisecond of every start and most of its slowest ones."""
LINGER_S = 2.0
"""How long a job claimed for a returning slot (see ``JobFetcher.returns_soon``) waits for a taker before
it goes back on the queue; also how recently a caller must have come for slots to count as returning."""


class JobCodec(Protocol):
    """The part of the queue the fetcher uses: its name and its job (de)serialisation."""

    name: str

    def serialize(self, job: Job) -> bytes: ...

    def deserialize(self, payload: bytes, status: Status) -> Job | None: ...


class JobFetcher:
    """Mark due jobs active for the waiting callers, in one transaction per batch, and hand them out.

    A batch (``FOR UPDATE SKIP LOCKED``, one job per group, ungrouped jobs never held back) goes to a local
    buffer the callers take from. A fetch runs when a caller arrives, on an enqueue notification, when the
    LISTEN connection is (re)established, on the Worker's ``schedule`` tick and as a safety-net poll; one
    runs at a time, and a fetch asked for meanwhile runs right after it.

    Args:
        pool: the queue's connected ``asyncpg.Pool``.
        codec: the queue, which (de)serialises its jobs.
        rows: the queue's rows.
        starts: remembers each job as dequeue stored it (see :class:`DeferredStarts`).
        priorities: the inclusive range of priorities to fetch.
        poll_interval: seconds between safety-net fetches while callers wait on notifications.
    """

    def __init__(
        self,
        pool: Any,
        codec: JobCodec,
        rows: QueueRows,
        starts: DeferredStarts,
        priorities: tuple[int, int],
        poll_interval: float,
    ) -> None:
        self._pool, self._codec, self._rows, self._starts = pool, codec, rows, starts
        self._priorities = priorities
        self._poll_interval = poll_interval
        self.waiting = 0
        """How many callers are inside :meth:`dequeue`."""
        self.returning = 0
        """How many slots are writing a finish and will dequeue next (see :meth:`returns_soon`)."""
        self._last_caller = -LINGER_S
        self._fetched_at: dict[str, float] = {}
        self._linger_check: asyncio.TimerHandle | None = None
        self._buffer: asyncio.Queue[Job] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._again = False
        self._drained = False
        """The last fetch found fewer due jobs than it wanted and no enqueue was announced since."""
        self._last_fetch = 0.0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._running = True
        # Stored with each job it dequeues until the Worker's own id replaces it, so a sweep can tell
        # that a job's process died even before the Worker's start write (see DeferredStarts).
        self._dequeuer_id = dequeuer_id()

    async def dequeue(self, timeout: float, poll_interval: float) -> Job | None:
        """Return the next due job, marked active, or ``None`` after ``timeout`` seconds (0: forever)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout > 0 else None
        poll_every = poll_interval if poll_interval > 0 else self._poll_interval
        self.waiting += 1
        self._last_caller = loop.time()
        try:
            arriving = True
            while self._running:
                # Fetch on arrival, then about once per poll period between all waiters.
                stale = loop.time() - self._last_fetch >= poll_every * 0.9
                if self._buffer.empty() and ((arriving and not self._drained) or stale):
                    await self.fetch()
                arriving = False
                wait = poll_every if deadline is None else min(poll_every, deadline - loop.time())
                if wait <= 0:
                    # A fetch still under way may have marked a job active for this caller: take it.
                    async with self._lock:
                        pass
                    return None if self._buffer.empty() else self._taken(self._buffer.get_nowait())
                if not self._buffer.empty():
                    return self._taken(self._buffer.get_nowait())
                with contextlib.suppress(asyncio.TimeoutError):
                    return self._taken(await within(self._buffer.get(), wait))
        finally:
            self.waiting -= 1
        return None

    def _taken(self, job: Job) -> Job:
        self._fetched_at.pop(job.key, None)
        return job

    @contextlib.contextmanager
    def returns_soon(self) -> Iterator[None]:
        """A worker slot writes its job's finish in this block and asks for its next job right after.

        Fetches meanwhile claim a job for it too, so its next job is fetched while its finish is written
        instead of after. Only while callers came recently (a worker dequeues here); a job claimed for a
        slot that does not come back is put back on the queue after ``LINGER_S`` (see ``_put_back``).
        """
        if asyncio.get_running_loop().time() - self._last_caller >= LINGER_S:
            yield
            return
        self.returning += 1
        if not self._drained:
            self.fetch_soon()
        try:
            yield
        finally:
            self.returning -= 1

    def on_notice(self, payload: str) -> None:
        """Fetch when an enqueue is announced and some caller still waits for a job."""
        if payload != ENQUEUE:
            return
        self._drained = False
        if self._lock.locked():
            self._again = True
        elif self.waiting + self.returning > self._buffer.qsize():
            self.fetch_soon()

    def fetch_soon(self) -> None:
        """Fetch in the background (e.g. after notifications may have been missed)."""
        self._drained = False
        if not self._running:
            return
        if self._lock.locked():
            self._again = True
            return
        self._track(self.fetch())

    async def fetch(self) -> None:
        """Fetch jobs for the callers that have none yet; if a fetch is under way, have it go again."""
        if self._lock.locked():
            self._again = True
            return
        async with self._lock:
            while self._running:
                self._again = False
                wanted = self.waiting + self.returning - self._buffer.qsize()
                if wanted <= 0:
                    return
                # Shielded: once rows are marked active they must reach the buffer, even if the
                # waiting caller is cancelled meanwhile (stop() puts back what nobody took).
                got, more = await asyncio.shield(self._track(self._fetch_batch(wanted)))
                self._last_fetch = asyncio.get_running_loop().time()
                if (got < wanted or not more) and not self._again:
                    self._drained = True
                    return

    async def stop(self) -> None:
        """Stop fetching, wait for fetches under way, and put back the jobs fetched but never taken."""
        self._running = False
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task
        if self._linger_check is not None:
            self._linger_check.cancel()
        await self._put_back(0)

    async def _put_back(self, older_than: float) -> None:
        """Requeue the buffered jobs fetched over ``older_than`` seconds ago; they keep their attempts."""
        cutoff = asyncio.get_running_loop().time() - older_than
        jobs: list[Job] = []
        kept: list[Job] = []
        while not self._buffer.empty():
            job = self._buffer.get_nowait()
            (jobs if self._fetched_at.get(job.key, 0) <= cutoff else kept).append(job)
        for job in kept:
            self._buffer.put_nowait(job)
        if not jobs:
            return
        for job in jobs:
            self._fetched_at.pop(job.key, None)
            self._starts.forget(job.key)
            job.status, job.started, job.touched = Status.QUEUED, 0, 0
        async with self._pool.acquire() as connection:
            await self._rows.requeue(
                connection, [job.key for job in jobs], [self._codec.serialize(job) for job in jobs]
            )
        logger.info("queue %r: requeued %d jobs fetched but never started", self._codec.name, len(jobs))

    def _check_lingering(self) -> None:
        """Put back jobs claimed for slots that did not come back; look again while any are left."""
        self._linger_check = None
        if self._running and not self._buffer.empty():
            self._track(self._put_back(LINGER_S))
            self._linger_check = asyncio.get_running_loop().call_later(LINGER_S, self._check_lingering)

    def _track(self, coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _fetch_batch(self, wanted: int) -> tuple[int, bool]:
        """Mark up to ``wanted`` due jobs active in one transaction and buffer them.

        Returns how many, and whether more were due: the query asks for one row more than wanted, so a
        fetch that took the last due job says so, and no slot's ``returns_soon`` fetches an empty queue
        again (that empty fetch, under way when the next enqueue's notification came, delayed its start).
        """
        async with self._pool.acquire() as connection, _claim_transaction(connection):
            rows = await self._rows.due(connection, self._priorities, wanted + 1)
            more = len(rows) > wanted
            if not rows:
                return 0, False
            started = now()
            groups: set[str] = set()
            jobs: list[Job] = []
            for key, blob, group_key in rows[:wanted]:
                if group_key is not None:
                    if group_key in groups:
                        continue  # one job per group, so a group never runs two at once
                    groups.add(group_key)
                job = self._codec.deserialize(blob, Status.ACTIVE)
                assert job is not None, key
                job.started = job.touched = started
                job.worker_id = self._dequeuer_id
                self._starts.dequeued(job)
                jobs.append(job)
            blobs = [self._codec.serialize(job) for job in jobs]
            await self._rows.mark_active(connection, [job.key for job in jobs], blobs)
        fetched_at = asyncio.get_running_loop().time()
        for job in jobs:
            self._fetched_at[job.key] = fetched_at
            self._buffer.put_nowait(job)
        if self._linger_check is None and self._buffer.qsize() > self.waiting:
            self._linger_check = asyncio.get_running_loop().call_later(LINGER_S, self._check_lingering)
        return len(jobs), more


@contextlib.asynccontextmanager
async def _claim_transaction(connection: Any) -> AsyncIterator[None]:
    """A transaction begun with ``CLAIM_BEGIN``: committed at the end, rolled back on any error."""
    await connection.execute(CLAIM_BEGIN)
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            await connection.execute("ROLLBACK")
        raise
    await connection.execute("COMMIT")
