"""Task handles, providers and services that the tests of ``tests/tasks/`` (and their apps) use."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from litestar.datastructures import State
from litestar.di import Provide
from saq.job import Job
from saq.queue import Queue

from litestar_saq import SyncJob, TaskContext, injected, task


@task
async def add(ctx: TaskContext, *, a: int, b: int = 0) -> int:
    return a + b


@task(name="tests.tasks.greet", timeout=30, retries=2, ttl=120)
async def greet(ctx: TaskContext, *, name: str) -> str:
    return f"hello {name}"


async def plain_echo(ctx: TaskContext, *, value: str) -> str:
    """Not a handle: listed by dotted path or as a (name, function) pair beside handles."""
    return value


@task
async def slow(ctx: TaskContext, *, seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "slept"


# --- dependency injection --------------------------------------------------------------------------


@dataclass
class Mailer:
    """A stand-in mail service that keeps what it sent."""

    sent: list[str] = field(default_factory=list)


@dataclass
class Trace:
    """What the providers did, in order (kept in ``app.state.trace``)."""

    events: list[str] = field(default_factory=list)


def provide_mailer(state: State) -> Mailer:
    mailer: Mailer = state.mailer
    return mailer


async def provide_sender(job: Job, queue: Queue) -> str:
    return f"{queue.name}:{job.function}"


def provide_sync_resource(state: State) -> Iterator[str]:
    state.trace.events.append("sync open")
    try:
        yield "sync-resource"
    except BaseException as exc:
        state.trace.events.append(f"sync saw {type(exc).__name__}")
        raise
    else:
        state.trace.events.append("sync close")


async def provide_async_resource(state: State, sender: str) -> AsyncIterator[str]:
    state.trace.events.append(f"async open for {sender}")
    try:
        yield "async-resource"
    except BaseException as exc:
        state.trace.events.append(f"async saw {type(exc).__name__}: {exc}")
        raise
    else:
        state.trace.events.append("async close")


def app_level_greeting() -> str:
    return "app"


def queue_level_greeting() -> str:
    return "queue"


def task_level_greeting() -> str:
    return "task"


DEPENDENCIES: dict[str, Any] = {
    "mailer": Provide(provide_mailer, sync_to_thread=False),
    "sender": provide_sender,
    "sync_resource": provide_sync_resource,
    "async_resource": provide_async_resource,
    "greeting": app_level_greeting,
}


@task
async def send_mail(
    ctx: TaskContext,
    *,
    to: str,
    mailer: Mailer = injected(),
    sender: str = injected(),
) -> str:
    mailer.sent.append(to)
    return f"{sender} -> {to}"


@task
async def use_resources(
    ctx: TaskContext,
    *,
    fail: bool = False,
    sleep: float = 0,
    sync_resource: str = injected(),
    async_resource: str = injected(),
) -> list[str]:
    if sleep:
        await asyncio.sleep(sleep)
    if fail:
        raise ValueError("task failed on purpose")
    return [sync_resource, async_resource]


@task
async def which_greeting(ctx: TaskContext, *, greeting: str = injected()) -> str:
    return greeting


@task(dependencies={"greeting": task_level_greeting})
async def task_greeting(ctx: TaskContext, *, greeting: str = injected()) -> str:
    return greeting


@task
async def default_marker(ctx: TaskContext, *, region: str = injected(default="eu")) -> str:
    return region


# --- sync tasks ------------------------------------------------------------------------------------


@task
def blocking_add(ctx: TaskContext, *, a: int, b: int, seconds: float = 0) -> dict[str, Any]:
    time.sleep(seconds)
    return {"sum": a + b, "thread": threading.current_thread().name}


@dataclass
class ThreadGauge:
    """How many sync tasks ran at the same time, at most."""

    running: int = 0
    most: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> None:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)

    def __exit__(self, *exc_info: object) -> None:
        with self.lock:
            self.running -= 1


@task
def gauged(ctx: TaskContext, *, seconds: float) -> None:
    with ctx["state"].gauge:
        time.sleep(seconds)


@task
def reports_progress(ctx: TaskContext, *, steps: int) -> str:
    job = SyncJob(ctx)
    for step in range(steps):
        job.update(progress=(step + 1) / steps)
    return f"{job.refresh().progress}"


@task
def stops_when_aborted(ctx: TaskContext) -> str:
    job = SyncJob(ctx)
    ctx["state"].started.set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if job.is_aborting():
            ctx["state"].saw_abort.set()
            return "stopped"
        time.sleep(0.05)
    return "never aborted"


@task
def sync_with_dependency(ctx: TaskContext, *, to: str, mailer: Mailer = injected()) -> str:
    mailer.sent.append(to)
    return threading.current_thread().name
