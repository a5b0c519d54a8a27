"""Worker processes beside ``litestar run``: the server lifespan's half of ``use_server_lifespan=True``.

The server owns SIGINT/SIGTERM; a ``Supervisor`` runs its children in a thread beside it, and when the
server stops the children drain.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from litestar_saq.exceptions import SAQConfigError
from litestar_saq.supervisor import Supervisor, drain_timeout_for

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import FrameType

    from litestar_saq.config import SAQConfig

__all__ = ("app_import_path", "supervise_in_background")

logger = logging.getLogger("litestar_saq")


@contextmanager
def supervise_in_background(config: SAQConfig, *, debug: bool = False) -> Iterator[None]:
    """Run the worker processes of ``config``'s ``separate_process`` queues while the block runs.

    Used by ``litestar run`` (server lifespan): the server owns SIGINT/SIGTERM; when it stops, the
    block ends and the children drain. The children load the app by the import path the Litestar CLI
    resolved (``--app``, ``LITESTAR_APP`` or autodiscovery).
    """
    queue_configs = [queue_config for queue_config in config.queue_configs if queue_config.separate_process]
    if not queue_configs:
        yield
        return
    app_path = app_import_path()
    if not app_path:
        raise SAQConfigError(
            "use_server_lifespan=True needs the app's import path to start worker processes; run the "
            "server with 'litestar --app module:app run' or set LITESTAR_APP"
        )
    supervisor = Supervisor(
        app_path,
        {queue_config.name: config.processes_for(queue_config) for queue_config in queue_configs},
        drain_timeout_s=drain_timeout_for(queue_configs),
        debug=debug,
    )
    with _sigterm_unwinds():
        supervisor.start()
        watcher = threading.Thread(target=supervisor.watch, name="saq-supervisor", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            supervisor.request_stop()
            watcher.join()
            logger.info("server stopped: stopping worker processes %s", supervisor.pids)
            supervisor.stop_children()


def app_import_path() -> str | None:
    """The app's import path as the running CLI resolved it, else ``LITESTAR_APP``."""
    # The Litestar CLI keeps what it loaded (with the ``app_path`` it resolved) as the context object;
    # LITESTAR_APP alone could name another app when --app overrides it.
    ctx = click.get_current_context(silent=True)
    app_path = getattr(ctx.find_root().obj, "app_path", None) if ctx is not None else None
    return app_path if isinstance(app_path, str) and app_path else os.environ.get("LITESTAR_APP")


class _Terminated(BaseException):
    """SIGTERM arrived: unwind so that the worker processes are stopped, then die of SIGTERM."""


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Turn SIGTERM into an exception while the block runs, and exit with status 143 after cleanup.

    By default SIGTERM ends the process on the spot, skipping the cleanup that stops the worker
    processes; uvicorn re-raises the SIGTERM it handled once the server has shut down.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    terminated = False

    def on_sigterm(signum: int, _frame: FrameType | None) -> None:
        nonlocal terminated
        if terminated:
            return  # already unwinding: let the worker processes finish draining
        terminated = True
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    except _Terminated:
        # Exit as a shell reports death by SIGTERM (143), but through SystemExit, so that atexit
        # handlers still run (the app's queued log handlers flush the last lines).
        raise SystemExit(128 + signal.SIGTERM) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
