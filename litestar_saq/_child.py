"""Run queues' workers in this process: the body of a worker child process and of ``workers run``.

A child process receives a ``ChildSpec`` (plain data only, so every multiprocessing start method can
send it), imports the app by its import path, runs the app's lifespan without serving HTTP, and runs
the workers of its queue(s) until it is asked to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass

from litestar import Litestar

from litestar_saq.exceptions import WorkersCannotStartError
from litestar_saq.runtime import mark_as_worker_child, runtime_of
from litestar_saq.worker_group import WorkerGroup

__all__ = (
    "EXIT_CANNOT_START",
    "ChildSpec",
    "apply_log_levels",
    "load_app",
    "run_child",
    "serve_queues",
)

logger = logging.getLogger("litestar_saq")

EXIT_CANNOT_START = 3
"""Exit code of a child that could not load the app, run its startup, or reach its broker."""

STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGBREAK") if hasattr(signal, name)
)


@dataclass(frozen=True)
class ChildSpec:
    """What a worker child process needs, as plain data that pickles under any start method."""

    app_path: str
    """``module:attribute`` of the app or app factory, as ``--app`` / ``LITESTAR_APP`` gave it."""
    queue_names: tuple[str, ...]
    """The queues whose workers this child runs."""
    log_levels: tuple[tuple[str, int], ...] = ()
    """``(logger name, level)`` pairs applied after the app configured logging."""
    debug: bool = False
    """Run the app in debug mode."""


def load_app(app_path: str) -> Litestar:
    """Import the app (or call the app factory) named by ``app_path`` (``"module:attribute"``).

    Raises:
        WorkersCannotStartError: the path is malformed, does not import, or names no Litestar app.
    """
    module_name, _, attribute = app_path.partition(":")
    if not module_name or not attribute:
        raise WorkersCannotStartError(f"app path {app_path!r} is not of the form 'module:attribute'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise WorkersCannotStartError(f"cannot import app module {module_name!r}: {_one_line(exc)}") from exc
    target = getattr(module, attribute, None)
    if target is None:
        raise WorkersCannotStartError(f"module {module_name!r} has no attribute {attribute!r}")
    if not isinstance(target, Litestar) and callable(target):
        try:
            target = target()
        except Exception as exc:
            raise WorkersCannotStartError(f"app factory {app_path!r} failed: {_one_line(exc)}") from exc
    if not isinstance(target, Litestar):
        raise WorkersCannotStartError(
            f"{app_path!r} is {type(target).__name__}, not a Litestar app or factory"
        )
    return target


def apply_log_levels(log_levels: Sequence[tuple[str, int]]) -> None:
    """Set logger levels, and give ``litestar_saq`` a handler if logging reaches no handler at all."""
    for name, level in log_levels:
        logging.getLogger(name).setLevel(level)
    package_logger = logging.getLogger("litestar_saq")
    if not package_logger.hasHandlers():
        # Without any handler only warnings would reach stderr (logging's last resort), and the
        # supervisor's restarts and drains are INFO.
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s - %(asctime)s - %(name)s - %(message)s"))
        package_logger.addHandler(handler)


def run_child(spec: ChildSpec) -> None:
    """Entry point of a worker child process: load the app, run its workers, exit when told to."""
    # The parent relays stop requests as SIGTERM; a terminal's Ctrl-C would otherwise interrupt the
    # import with a KeyboardInterrupt traceback. serve_queues() installs the real handlers.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # A forked child inherits the supervisor's handler; until serve_queues() installs its own,
        # SIGTERM simply ends the child (no job can be running yet).
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Set before the import, so the app's plugin does not start in-process workers in this child.
    mark_as_worker_child()
    try:
        app = load_app(spec.app_path)
        if spec.debug:
            app.debug = True
        apply_log_levels(spec.log_levels)
        exit_code = asyncio.run(serve_queues(app, spec.queue_names, handle_signals=True, watch_parent=True))
    except WorkersCannotStartError as exc:
        # One line on stderr, written directly: the app's log handlers may not exist yet or may
        # buffer in a thread that a forked child never flushes.
        sys.stderr.write(
            f"litestar-saq: worker process {os.getpid()} for queue(s) {', '.join(spec.queue_names)} "
            f"cannot start: {exc}\n"
        )
        sys.stderr.flush()
        exit_code = EXIT_CANNOT_START
    sys.exit(exit_code)


async def serve_queues(
    app: Litestar, queue_names: Sequence[str], *, handle_signals: bool, watch_parent: bool = False
) -> int:
    """Run the app's lifespan and the workers of ``queue_names`` until stopped; return an exit code.

    The first SIGINT/SIGTERM (with ``handle_signals``) stops dequeuing; running jobs get their queue's
    ``shutdown_grace_period_s`` to finish and are then aborted, which puts them back on the queue.
    Later signals while draining are logged and ignored, so a second Ctrl-C never cuts a job short
    before its grace period; send SIGKILL to end the process at once (SAQ's sweep then retries the job).

    Args:
        app: the loaded application.
        queue_names: the queues whose workers run here.
        handle_signals: stop on SIGINT/SIGTERM (not when the caller owns the signals).
        watch_parent: also stop when the parent process exits (worker child processes).

    Returns:
        0 after a requested stop or when every worker finished (burst mode), 1 if a worker failed.

    Raises:
        WorkersCannotStartError: the app's startup or a broker connection failed.
    """
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    signal_count = 0

    def on_signal(signum: int) -> None:
        nonlocal signal_count
        signal_count += 1
        name = signal.Signals(signum).name
        if signal_count == 1:
            logger.info(
                "%s received: stopping workers of %s (running jobs get their grace period)",
                name,
                ", ".join(queue_names),
            )
        else:
            logger.warning(
                "%s received again: still draining, running jobs keep their grace period; "
                "send SIGKILL to stop now (unfinished jobs are then retried by the sweep)",
                name,
            )
        stop_requested.set()

    restore_signals = install_signal_handlers(loop, on_signal) if handle_signals else _nothing
    try:
        if watch_parent:
            _stop_when_parent_exits(loop, stop_requested)
        return await _run_workers(app, queue_names, stop_requested)
    finally:
        restore_signals()


async def _run_workers(app: Litestar, queue_names: Sequence[str], stop_requested: asyncio.Event) -> int:
    async with AsyncExitStack() as stack:
        try:
            await stack.enter_async_context(app.lifespan())
        except Exception as exc:
            raise WorkersCannotStartError(f"the app's startup failed: {_one_line(exc)}") from exc
        if stop_requested.is_set():
            return 0
        workers = WorkerGroup(app, runtime_of(app), queue_names, where=f"process {os.getpid()}")
        workers.start()
        return await workers.run_until(stop_requested)


def install_signal_handlers(
    loop: asyncio.AbstractEventLoop, on_signal: Callable[[int], None]
) -> Callable[[], None]:
    """Call ``on_signal(signum)`` in ``loop`` on SIGINT/SIGTERM; return a function that undoes it.

    Uses ``loop.add_signal_handler`` where the loop has it and falls back to ``signal.signal`` (e.g. on
    Windows); outside the main thread, where neither works, signals are left to the caller.
    """
    if threading.current_thread() is not threading.main_thread():
        logger.debug("not in the main thread: leaving SIGINT/SIGTERM to the caller")
        return _nothing
    undo: list[Callable[[], object]] = []
    for signum in STOP_SIGNALS:
        try:
            loop.add_signal_handler(signum, on_signal, signum)
            undo.append(functools.partial(loop.remove_signal_handler, signum))
        except (NotImplementedError, RuntimeError, AttributeError):
            previous = signal.signal(signum, functools.partial(_call_in_loop, loop, on_signal))
            undo.append(functools.partial(signal.signal, signum, previous))

    def restore() -> None:
        for undo_one in undo:
            undo_one()

    return restore


def _call_in_loop(
    loop: asyncio.AbstractEventLoop, on_signal: Callable[[int], None], signum: int, _frame: object
) -> None:
    loop.call_soon_threadsafe(on_signal, signum)


def _stop_when_parent_exits(loop: asyncio.AbstractEventLoop, stop_requested: asyncio.Event) -> None:
    """Drain and exit if the supervisor dies without telling us (e.g. SIGKILL), so no orphan is left."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def wait_for_parent() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        logger.warning("the supervisor process %s exited: stopping this worker process", parent.pid)
        # The loop may have closed meanwhile (the child is exiting anyway).
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(stop_requested.set)

    threading.Thread(target=wait_for_parent, name="saq-parent-watch", daemon=True).start()


def _one_line(exc: BaseException) -> str:
    """``exc`` as one line; our own errors already say what failed, others get their type name."""
    # Litestar's lifespan runs in a task group, which wraps the startup error in an exception group.
    nested = getattr(exc, "exceptions", None)
    if isinstance(nested, (list, tuple)) and nested:
        return "; ".join(_one_line(inner) for inner in nested)
    text = " ".join(str(exc).split())
    if type(exc).__module__.startswith("litestar_saq") and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _nothing() -> None:
    return None
