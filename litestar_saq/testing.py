"""Helpers for testing code that enqueues jobs: run the jobs, wait for one, swap brokers for memory.

Use them in your own tests::

    from litestar_saq.testing import drain, in_memory_queues, wait_for_job

    async def test_signup_sends_welcome_email() -> None:
        app = create_app()
        with in_memory_queues(app):               # no Redis or PostgreSQL needed
            async with app.lifespan():
                ...                               # call handlers that enqueue
                await drain(app)                  # every queued job has run
                job = await wait_for_job(app, "default", key)

With ``pytest_plugins = ["litestar_saq.testing"]`` in a ``conftest.py`` the fixture ``saq_in_memory``
does the swap for the test's duration: ``saq_in_memory(app)``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

from saq.job import TERMINAL_STATUSES
from saq.queue import Queue

from litestar_saq.exceptions import JobNotFoundError, WaitTimeoutError
from litestar_saq.runtime import SAQRuntime, runtime_of
from litestar_saq.worker_group import WorkerGroup

if TYPE_CHECKING:
    import httpx
    from litestar import Litestar
    from saq.job import Job
__all__ = ("drain", "in_memory_queues", "running_app", "saq_in_memory", "wait_for_job")


@contextmanager
def in_memory_queues(app: Litestar) -> Iterator[None]:
    """Run every queue of ``app`` on ``memory://`` with in-process workers while the block runs.

    Call it before the app starts (before ``app.lifespan()`` or the test client). Tasks, cron jobs,
    hooks and every other setting stay as configured.
    """
    config = runtime_of(app).config
    original = list(config.queue_configs)
    config.queue_configs = [
        dataclasses.replace(
            queue_config, dsn="memory://", broker_instance=None, broker_options={}, separate_process=False
        )
        for queue_config in original
    ]
    try:
        yield
    finally:
        config.queue_configs = original


@asynccontextmanager
async def running_app(app: Litestar, base_url: str = "http://testserver") -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app`` (lifespan, queues, workers) in this event loop and yield an ``httpx`` client for it.

    Unlike a client that runs the app in a thread, the test and the app share one loop, so tests can
    use the app's queues directly. Works from pytest-asyncio fixtures, which enter and exit in
    different tasks. A startup error is raised here.
    """
    import httpx

    started = asyncio.Event()
    stop = asyncio.Event()

    async def serve() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    server = asyncio.create_task(serve(), name="litestar-saq-test-app")
    startup = asyncio.create_task(started.wait())
    await asyncio.wait({server, startup}, return_when=asyncio.FIRST_COMPLETED)
    if server.done():
        startup.cancel()
        error = server.exception()
        if error is not None:
            raise _innermost(error)
    try:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]  # ASGI app, stricter types
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client
    finally:
        stop.set()
        await server


def _innermost(error: BaseException) -> BaseException:
    """The one real error inside (nested) exception groups, such as Litestar's startup task group."""
    inner = getattr(error, "exceptions", None)
    while isinstance(inner, tuple) and len(inner) == 1 and isinstance(inner[0], BaseException):
        error = inner[0]
        inner = getattr(error, "exceptions", None)
    return error


async def drain(app: Litestar, *, timeout: float = 10.0, queues: list[str] | None = None) -> None:
    """Wait until every queued and running job of ``app`` has finished, running workers if needed.

    Queues whose workers run in this process are waited on; for the others a worker is started for
    the drain and stopped afterwards. Jobs scheduled for later are not waited for.

    Raises:
        TimeoutError: naming the queues that still have jobs after ``timeout`` seconds.
    """
    runtime = runtime_of(app)
    names = queues or list(runtime.task_queues)
    running_here = {queue_config.name for queue_config in runtime.queues_to_run_here()}
    temporary = WorkerGroup(
        app, runtime, [name for name in names if name not in running_here], where="the test"
    )
    temporary.start()
    try:
        await _wait_until_idle(runtime, names, timeout)
    finally:
        await temporary.stop()


async def _wait_until_idle(runtime: SAQRuntime, names: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        busy = {}
        for name in names:
            queue = runtime.task_queues.get(name)
            pending = await queue.count("queued") + await queue.count("active")
            if pending:
                busy[name] = pending
        if not busy:
            return
        if time.monotonic() > deadline:
            raise WaitTimeoutError(f"jobs still queued or running after {timeout} s: {busy}")
        await asyncio.sleep(0.01)


async def wait_for_job(
    app_or_queue: Litestar | Queue, queue_name: str | None, key: str, *, timeout: float = 10.0
) -> Job:
    """Wait until the job ``key`` has finished (complete, failed or aborted) and return it.

    Args:
        app_or_queue: the app (then give ``queue_name``) or the queue itself (``queue_name=None``).
        queue_name: the queue's name when an app is given.
        key: the job's key, as returned by ``enqueue``.
        timeout: seconds to wait.

    Raises:
        TimeoutError: with the job's last status, if it has not finished in time.
        LookupError: if no such job exists.
    """
    if isinstance(app_or_queue, Queue):
        queue = app_or_queue
    else:
        queue = runtime_of(app_or_queue).task_queues.get(queue_name or "default")
    deadline = time.monotonic() + timeout
    while True:
        job = await queue.job(key)
        if job is None:
            raise JobNotFoundError(f"queue {queue.name!r} has no job with key {key!r}")
        if job.status in TERMINAL_STATUSES:
            return job
        if time.monotonic() > deadline:
            raise WaitTimeoutError(
                f"job {key!r} in queue {queue.name!r} still {job.status} after {timeout} s"
            )
        await asyncio.sleep(0.01)


try:
    import pytest
except ImportError:  # pragma: no cover - pytest is only needed for the fixture
    pass
else:

    @pytest.fixture
    def saq_in_memory() -> Iterator[Callable[[Litestar], None]]:
        """Fixture: call ``saq_in_memory(app)`` to run ``app``'s queues on ``memory://`` for this test."""
        with _SwapStack() as swap:
            yield swap


class _SwapStack:
    """Swaps apps to memory queues on request and restores them all at exit."""

    def __init__(self) -> None:
        self._restores: list[Any] = []

    def __enter__(self) -> Callable[[Litestar], None]:
        return self._swap

    def _swap(self, app: Litestar) -> None:
        manager = in_memory_queues(app)
        manager.__enter__()
        self._restores.append(manager)

    def __exit__(self, *exc_info: object) -> None:
        while self._restores:
            self._restores.pop().__exit__(None, None, None)
