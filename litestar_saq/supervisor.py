"""Worker child processes: start them, restart crashed ones with backoff, drain them on SIGTERM/SIGINT.

One ``Supervisor`` owns the children of ``litestar workers run --process`` (in the foreground, where it
handles the signals) and of ``litestar run`` with ``use_server_lifespan=True`` (in a thread beside the
server, which owns the signals). Children start with the ``spawn`` method by default and receive only
plain data (see ``litestar_saq._child.ChildSpec``), so ``forkserver`` and ``fork`` work too.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from litestar_saq._child import EXIT_CANNOT_START, STOP_SIGNALS, ChildSpec, run_child
from litestar_saq.recycling import EXIT_RECYCLE
from litestar_saq.worker import drain_budget_s

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess
    from types import FrameType

    from litestar_saq.config import QueueConfig

__all__ = (
    "RestartBackoff",
    "Supervisor",
    "drain_timeout_for",
    "supervise_until_signalled",
)

logger = logging.getLogger("litestar_saq")

DRAIN_MARGIN_S = 10.0
"""Beyond a worker's drain budget: time for shutdown hooks and closing brokers."""


@dataclass
class RestartBackoff:
    """Delays before restarting a child that died: 1 s doubling up to 30 s, reset after a stable run."""

    initial_s: float = 1.0
    """Delay after the first failure."""
    max_s: float = 30.0
    """The longest delay."""
    stable_after_s: float = 60.0
    """A child that ran this long before dying counts as a fresh failure (delay back to ``initial_s``)."""
    _next_s: float = field(default=0.0, init=False)

    def delay_after_exit(self, ran_for_s: float) -> float:
        """Return how long to wait before restarting a child that ran ``ran_for_s`` seconds."""
        if self._next_s == 0.0 or ran_for_s >= self.stable_after_s:
            self._next_s = self.initial_s
        delay = self._next_s
        self._next_s = min(self._next_s * 2, self.max_s)
        return delay


@dataclass
class _ChildSlot:
    """One child process of a queue, and when to restart it after it died."""

    queue_name: str
    spec: ChildSpec
    backoff: RestartBackoff
    process: BaseProcess | None = None
    started_at: float = 0.0
    restart_at: float | None = None


def drain_timeout_for(queue_configs: Sequence[QueueConfig]) -> float:
    """Seconds a child of these queues may take to drain before it is killed.

    The worker's own budget (``drain_budget_s``: grace period, cancellation, recording the outcome)
    plus a margin for shutdown hooks and closing the brokers.
    """
    return max(
        (
            drain_budget_s(queue_config.shutdown_grace_period_s, queue_config.cancellation_hard_deadline_s)
            + DRAIN_MARGIN_S
            for queue_config in queue_configs
        ),
        default=DRAIN_MARGIN_S,
    )


class Supervisor:
    """Start ``processes_by_queue[name]`` children per queue, restart them, and drain them on stop.

    Args:
        app_path: the app's import path (``module:attribute``), which every child imports.
        processes_by_queue: how many child processes each queue gets; each child runs one queue.
        drain_timeout_s: after asking the children to stop, kill those still running after this long;
            ``None`` waits for ever.
        log_levels: ``(logger name, level)`` pairs the children apply after loading the app.
        debug: run the children's app in debug mode.
        start_method: multiprocessing start method; ``spawn`` works on every platform.
        backoff: builds the restart policy of each child.
    """

    def __init__(
        self,
        app_path: str,
        processes_by_queue: Mapping[str, int],
        *,
        drain_timeout_s: float | None,
        log_levels: Sequence[tuple[str, int]] = (),
        debug: bool = False,
        start_method: Literal["spawn", "forkserver", "fork"] = "spawn",
        backoff: type[RestartBackoff] = RestartBackoff,
    ) -> None:
        self._process_class = _process_class(start_method)
        self._drain_timeout_s = drain_timeout_s
        self._slots = [
            _ChildSlot(
                queue_name,
                ChildSpec(app_path, (queue_name,), tuple(log_levels), debug),
                backoff(),
            )
            for queue_name, count in processes_by_queue.items()
            for _ in range(count)
        ]
        # Signal handlers and other threads wake the watch loop by writing to this pipe; only the
        # loop reads it, so a handler never does more than a write.
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        self._wake_closed = False
        self._stop_requests = 0
        self._stop_requests_seen = 0

    @property
    def pids(self) -> list[int]:
        """Process ids of the children running now."""
        return [slot.process.pid for slot in self._slots if slot.process is not None and slot.process.pid]

    def start(self) -> None:
        """Start every child process."""
        for slot in self._slots:
            self._start(slot)

    def request_stop(self) -> None:
        """Ask the watch loop to stop; safe from a signal handler and from another thread."""
        self._stop_requests += 1
        if self._wake_closed:
            return
        # A full pipe means the loop is already due to wake up.
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_write, b"s")

    def watch(self) -> None:
        """Restart children that die until ``request_stop()``; return at once if all finished cleanly."""
        while self._stop_requests == 0:
            self._reap_and_restart()
            if all(slot.process is None and slot.restart_at is None for slot in self._slots):
                logger.info("every worker process finished: nothing left to supervise")
                return
            self._wait(self._seconds_to_next_restart())

    def stop_children(self) -> bool:
        """Ask every child to drain (SIGTERM), wait up to the drain timeout, kill the rest.

        Returns:
            ``True`` if every child exited by itself, ``False`` if some had to be killed.
        """
        for slot in self._slots:
            slot.restart_at = None
            if slot.process is not None and slot.process.is_alive() and slot.process.pid is not None:
                os.kill(slot.process.pid, signal.SIGTERM)
        deadline = None if self._drain_timeout_s is None else time.monotonic() + self._drain_timeout_s
        while True:
            for slot in self._slots:
                if slot.process is not None and not slot.process.is_alive():
                    self._log_exit(slot, stopping=True)
                    slot.process = None
            # Collected after reaping: a child that exits in between is waited for by its sentinel.
            running = [(slot, slot.process) for slot in self._slots if slot.process is not None]
            if not running:
                break
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                for slot, process in running:
                    logger.error(
                        "queue %r: worker process %s still running %.0f s after SIGTERM: killing it",
                        slot.queue_name,
                        process.pid,
                        self._drain_timeout_s,
                    )
                    process.kill()
                    process.join()
                    slot.process = None
                self._close_wake_pipe()
                return False
            self._wait(remaining, [process.sentinel for _, process in running])
        self._close_wake_pipe()
        return True

    # --- internals -----------------------------------------------------------------------------------
    def _close_wake_pipe(self) -> None:
        self._wake_closed = True
        os.close(self._wake_read)
        os.close(self._wake_write)

    def _start(self, slot: _ChildSlot) -> None:
        process = self._process_class(
            target=run_child, args=(slot.spec,), name=f"saq-worker-{slot.queue_name}", daemon=False
        )
        process.start()
        slot.process, slot.started_at, slot.restart_at = process, time.monotonic(), None
        logger.info("queue %r: started worker process %s", slot.queue_name, process.pid)

    def _reap_and_restart(self) -> None:
        now = time.monotonic()
        for slot in self._slots:
            if slot.process is not None and not slot.process.is_alive():
                ran_for_s = now - slot.started_at
                exit_code = slot.process.exitcode
                if exit_code == 0:
                    self._log_exit(slot, stopping=False)
                    slot.process = None  # finished its work (burst mode): not restarted
                    continue
                if exit_code == EXIT_RECYCLE:  # a planned exit: no backoff, and no failure to count
                    logger.info(
                        "queue %r: worker process %s recycled after %.1f s; starting a fresh one",
                        slot.queue_name,
                        slot.process.pid,
                        ran_for_s,
                    )
                    self._start(slot)
                    continue
                delay = slot.backoff.delay_after_exit(ran_for_s)
                logger.error(
                    "queue %r: worker process %s exited with code %s%s after %.1f s; restarting it in %.0f s",
                    slot.queue_name,
                    slot.process.pid,
                    exit_code,
                    _describe_exit(exit_code),
                    ran_for_s,
                    delay,
                )
                slot.process, slot.restart_at = None, now + delay
            elif slot.process is None and slot.restart_at is not None and slot.restart_at <= now:
                self._start(slot)

    def _seconds_to_next_restart(self) -> float | None:
        due = [slot.restart_at for slot in self._slots if slot.restart_at is not None]
        return max(0.0, min(due) - time.monotonic()) if due else None

    def _wait(self, timeout: float | None, sentinels: list[int] | None = None) -> None:
        """Sleep until a child exits, a stop is requested, or ``timeout`` passes (no busy loop)."""
        if sentinels is None:
            sentinels = [slot.process.sentinel for slot in self._slots if slot.process is not None]
        ready = multiprocessing.connection.wait([self._wake_read, *sentinels], timeout)
        if self._wake_read in ready:
            os.read(self._wake_read, 512)
        if self._stop_requests > self._stop_requests_seen:
            if self._stop_requests_seen > 0:
                logger.warning(
                    "stop requested again: still waiting for running jobs to finish within their grace "
                    "period; send SIGKILL to stop at once (unfinished jobs are then retried by the sweep)"
                )
            self._stop_requests_seen = self._stop_requests

    def _log_exit(self, slot: _ChildSlot, *, stopping: bool) -> None:
        assert slot.process is not None
        exit_code = slot.process.exitcode
        level = logging.INFO if exit_code == 0 else logging.WARNING
        logger.log(
            level,
            "queue %r: worker process %s %s with code %s%s",
            slot.queue_name,
            slot.process.pid,
            "stopped" if stopping else "finished",
            exit_code,
            _describe_exit(exit_code),
        )


def _process_class(start_method: Literal["spawn", "forkserver", "fork"]) -> type[BaseProcess]:
    if start_method == "fork":
        return multiprocessing.get_context("fork").Process
    if start_method == "forkserver":
        return multiprocessing.get_context("forkserver").Process
    return multiprocessing.get_context("spawn").Process


def _describe_exit(exit_code: int | None) -> str:
    if exit_code == EXIT_CANNOT_START:
        return " (it could not start: see its error above)"
    if exit_code is not None and exit_code < 0:
        try:
            return f" (killed by {signal.Signals(-exit_code).name})"
        except ValueError:
            return f" (killed by signal {-exit_code})"
    return ""


def supervise_until_signalled(supervisor: Supervisor) -> int:
    """Run ``supervisor`` in the foreground until SIGINT/SIGTERM, then drain; return the exit code.

    The first signal asks every child to drain; later signals are logged and ignored, so running jobs
    keep their grace period. Returns 0 when every child stopped by itself, 1 if some had to be killed.
    """

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        supervisor.request_stop()

    previous = {signum: signal.signal(signum, on_signal) for signum in STOP_SIGNALS}
    try:
        supervisor.start()
        supervisor.watch()
        logger.info("stopping worker processes %s", supervisor.pids)
        return 0 if supervisor.stop_children() else 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
