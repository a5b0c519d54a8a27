"""Live dashboard plumbing: broker readers shared by every open stream, and the streams' limits.

A page opens a Server-Sent Events stream and names what it watches; each watched thing (all queues'
counts, one queue's failures, one job) is a ``Feed``: a single task that reads the broker every
``web_live_interval_s`` and hands each *changed* state to every stream that watches it. So N open pages
cost one broker read per interval, not N. A stream keeps only the latest state per topic until it is
sent, so a slow client never makes the server buffer more than one state per topic.

Streams are bounded: a heartbeat comment every ``web_live_heartbeat_s`` while idle, closed after
``web_live_max_stream_s`` (``EventSource`` reconnects by itself), at most ``web_live_max_streams`` at
once (one more gets a 503), ended when the client goes away and when the app or server shuts down.

Uvicorn waits for open responses to end before it runs the app's shutdown, so an open stream would
hold up a server stopping on SIGTERM/SIGINT. While streams are open the hub therefore listens for those
signals too: it ends the streams and passes the signal on to the handler that was there before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from litestar.background_tasks import BackgroundTask
from litestar.exceptions import HTTPException
from litestar.response import ServerSentEvent
from litestar.response.sse import ServerSentEventMessage

from litestar_saq.backends.deadline import within
from litestar_saq.dsn import redact

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
    from types import FrameType

    from litestar import Litestar

    from litestar_saq.config import SAQConfig

    Reader = Callable[["Feed"], Awaitable[dict[str, Any]]]
    """Reads the broker once and returns the current state of each topic of a feed (JSON-able values)."""

__all__ = ("Feed", "LiveHub", "LiveSettings")

logger = logging.getLogger("litestar_saq.web")

RETRY_MS = 2000
"""How long ``EventSource`` waits before it reconnects after a stream ended."""
READ_TIMEOUT_S = 10.0
"""A broker read that takes longer counts as failed (the page says so) and is tried again."""
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True)
class LiveSettings:
    """The ``web_live_*`` settings of ``SAQConfig``."""

    interval_s: float = 1.0
    heartbeat_s: float = 15.0
    max_stream_s: float = 300.0
    max_streams: int = 100

    @classmethod
    def from_config(cls, config: SAQConfig) -> LiveSettings:
        """Read the settings from ``config``."""
        return cls(
            interval_s=config.web_live_interval_s,
            heartbeat_s=config.web_live_heartbeat_s,
            max_stream_s=config.web_live_max_stream_s,
            max_streams=config.web_live_max_streams,
        )


@dataclass(eq=False)
class Subscriber:
    """One open stream: the states not yet sent, latest per (feed, topic)."""

    pending: dict[tuple[str, str], Any] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def push(self, feed_key: str, topic: str, state: Any) -> None:
        self.pending[(feed_key, topic)] = state
        self.wake.set()


class Feed:
    """One broker reader shared by every stream watching the same thing; it runs while watched."""

    def __init__(self, key: str, read: Reader, interval_s: float) -> None:
        self.key = key
        self.read = read
        self.interval_s = interval_s
        self.latest: dict[str, Any] = {}
        """Last state sent per topic: a stream that joins gets these at once."""
        self.subscribers: set[Subscriber] = set()
        self.reads = 0
        """Broker reads so far (each may be several queries): what the dashboard costs the broker."""
        self.failed_reads = 0
        self.memo: dict[str, Any] = {}
        """Scratch space for a reader (what it read last, when it last ran a costly scan)."""
        self.task: asyncio.Task[None] | None = None
        self.stopped = False
        """Set with the task's cancellation: Python < 3.12's ``wait_for`` can swallow a cancellation."""

    async def run(self) -> None:
        failing = False
        while not self.stopped:
            try:
                states = await within(self.read(self), max(READ_TIMEOUT_S, 2 * self.interval_s))
            except Exception as exc:  # the broker is down or slow: say so on the page, keep trying
                self.failed_reads += 1
                reason = redact(" ".join(f"{type(exc).__name__}: {exc}".split()))
                if not failing:
                    logger.warning("live dashboard: reading %s failed: %s", self.key, reason)
                failing = True
                error = f"reading {self.key} failed ({type(exc).__name__}); see the server log"
                states = {"broker": {"error": error}}
            else:
                if failing:
                    logger.info("live dashboard: reading %s works again", self.key)
                    states["broker"] = {"error": None}
                failing = False
            self.reads += 1
            self.publish(states)
            await asyncio.sleep(self.interval_s)

    def publish(self, states: dict[str, Any]) -> None:
        """Send each state that differs from the last one sent for its topic."""
        for topic, state in states.items():
            if topic in self.latest and self.latest[topic] == state:
                continue
            self.latest[topic] = state
            for subscriber in self.subscribers:
                subscriber.push(self.key, topic, state)


class LiveHub:
    """The feeds and open streams of one dashboard; closed when the app shuts down."""

    def __init__(self, settings: LiveSettings) -> None:
        self.settings = settings
        self.feeds: dict[str, Feed] = {}
        self.streams = 0
        self.closed = False
        self._subscribers: set[Subscriber] = set()
        self._stopping: set[asyncio.Task[None]] = set()
        self._previous_handlers: dict[int, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._signalled: asyncio.Task[None] | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> LiveHub:
        # Litestar deep-copies routers and handler ``opt`` on registration; the hub is shared state.
        return self

    def reads(self) -> int:
        """Broker reads of every running feed so far."""
        return sum(feed.reads for feed in self.feeds.values())

    def stream(self, feeds: Mapping[str, Reader]) -> ServerSentEvent:
        """Return the response streaming ``feeds`` (key -> reader), or raise a 503 if none may open."""
        if self.closed:
            raise HTTPException(status_code=503, detail="the server is shutting down; reconnect later")
        if self.streams >= self.settings.max_streams:
            raise HTTPException(
                status_code=503,
                detail=f"too many live dashboard streams open ({self.streams}, the most is "
                f"web_live_max_streams={self.settings.max_streams}); close other dashboard tabs or raise "
                "the setting",
                headers={"Retry-After": "10"},
            )
        # Counted from here, not when the body starts: a burst of requests cannot overshoot the cap.
        self.streams += 1
        subscriber = Subscriber()
        self._subscribers.add(subscriber)
        for key, read in feeds.items():
            self._join(subscriber, key, read)
        self._catch_signals()
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._leave(subscriber)

        async def events() -> AsyncIterator[ServerSentEventMessage]:
            try:
                async for message in self._events(subscriber):
                    yield message
            finally:
                release()

        # ``release`` also runs as the response's background task: a client that leaves before the
        # body starts never runs the generator, whose ``finally`` would otherwise free its place.
        return ServerSentEvent(events(), background=BackgroundTask(release))

    async def _events(self, subscriber: Subscriber) -> AsyncIterator[ServerSentEventMessage]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.max_stream_s
        yield ServerSentEventMessage(data=None, retry=RETRY_MS, comment="litestar-saq live dashboard")
        while not self.closed:
            remaining = deadline - loop.time()
            if remaining <= 0:
                yield _message("end", {"reason": "web_live_max_stream_s reached; reconnect"})
                return
            with contextlib.suppress(asyncio.TimeoutError):
                await within(subscriber.wake.wait(), min(self.settings.heartbeat_s, remaining))
            subscriber.wake.clear()
            if not subscriber.pending:
                if not self.closed and loop.time() < deadline:
                    yield ServerSentEventMessage(data=None, comment="heartbeat")
                continue
            pending, subscriber.pending = subscriber.pending, {}
            for (_, topic), state in pending.items():
                yield _message(topic, state)
        yield _message("end", {"reason": "the server is shutting down"})

    def _join(self, subscriber: Subscriber, key: str, read: Reader) -> None:
        feed = self.feeds.get(key)
        if feed is None:
            feed = self.feeds[key] = Feed(key, read, self.settings.interval_s)
            feed.task = asyncio.create_task(feed.run(), name=f"litestar-saq-live {key}")
        feed.subscribers.add(subscriber)
        for topic, state in feed.latest.items():
            subscriber.push(key, topic, state)

    def _leave(self, subscriber: Subscriber) -> None:
        self.streams -= 1
        self._subscribers.discard(subscriber)
        for key, feed in list(self.feeds.items()):
            feed.subscribers.discard(subscriber)
            if not feed.subscribers:
                # Synchronous: this runs while the stream is being cancelled, where nothing can be awaited.
                self._stop_feed(key)
        if not self.streams:
            self._release_signals()

    def _stop_feed(self, key: str) -> None:
        feed = self.feeds.pop(key)
        feed.stopped = True
        if feed.task is not None:
            feed.task.cancel()
            self._stopping.add(feed.task)
            feed.task.add_done_callback(self._stopping.discard)

    @asynccontextmanager
    async def lifespan(self, _: Litestar) -> AsyncIterator[None]:
        """The app's lifespan: entered after the queues connect, so streams end before they close."""
        self.closed = False
        self._signalled = None
        try:
            yield
        finally:
            await self.close()

    async def close(self) -> None:
        """End every stream and stop every feed; new streams get a 503. Called at app shutdown."""
        self.closed = True
        for subscriber in self._subscribers:
            subscriber.wake.set()
        for key in list(self.feeds):
            self._stop_feed(key)
        if self._stopping:
            await asyncio.wait(self._stopping, timeout=max(READ_TIMEOUT_S, 2 * self.settings.interval_s))
        self._release_signals()

    def _catch_signals(self) -> None:
        """While streams are open, end them on SIGINT/SIGTERM before the server's own handler runs."""
        if self._previous_handlers or threading.current_thread() is not threading.main_thread():
            return
        self._loop = asyncio.get_running_loop()
        for signum in _SIGNALS:
            previous = signal.getsignal(signum)
            # Without a Python handler the signal ends the process anyway: nothing can hang.
            if callable(previous):
                self._previous_handlers[signum] = previous
                signal.signal(signum, self._on_signal)

    def _release_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, previous in list(self._previous_handlers.items()):
            # Another handler installed on top of ours keeps calling ours, which passes the signal on.
            if signal.getsignal(signum) == self._on_signal:
                signal.signal(signum, previous)
                del self._previous_handlers[signum]

    def _close_soon(self) -> None:
        if self._signalled is None:
            self._signalled = asyncio.create_task(self.close(), name="litestar-saq-live close")

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        loop = self._loop
        if loop is not None and not self.closed:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(self._close_soon)
        previous = self._previous_handlers.get(signum)
        if callable(previous):
            previous(signum, frame)


def _message(topic: str, state: Any) -> ServerSentEventMessage:
    return ServerSentEventMessage(event=topic, data=msgspec.json.encode(state).decode())
