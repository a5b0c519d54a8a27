"""The ``litestar workers`` command group: ``run`` the queues' workers and show their ``status``.

``SAQPlugin.on_cli_init`` adds the group to the Litestar CLI (``litestar --app app:app workers run``).
``main()`` runs the same commands without the Litestar CLI, for process managers that start workers
directly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

import click

from litestar_saq._child import apply_log_levels, serve_queues
from litestar_saq._status import QueueStatus, collect_status
from litestar_saq.cli_common import LazyApp, config_of, fail, loaded_app, quoted_names, select_queues
from litestar_saq.cli_ops import build_ops_commands
from litestar_saq.exceptions import WorkersCannotStartError
from litestar_saq.metrics import serve_job_metrics
from litestar_saq.runtime import mark_as_worker_child
from litestar_saq.supervisor import Supervisor, drain_timeout_for, supervise_until_signalled

if TYPE_CHECKING:
    from litestar import Litestar

    from litestar_saq.config import QueueConfig, SAQConfig

__all__ = ("build_cli_app", "main")


def build_cli_app() -> click.Group:
    """Return a new ``workers`` group (``run``, ``status``, ``health``, ops commands) for a click CLI."""

    @click.group(name="workers", help="Run SAQ workers and show their queues' status.")
    def workers_group() -> None:
        pass

    workers_group.add_command(_build_run_command())
    workers_group.add_command(_build_status_command())
    for command in build_ops_commands():
        workers_group.add_command(command)
    return workers_group


def main(args: Sequence[str] | None = None) -> None:
    """Run the ``workers`` commands without the Litestar CLI.

    For process managers: ``python -c 'from litestar_saq.cli import main; main()' --app app:app workers run``.
    """

    @click.group(name="litestar-saq", help="SAQ workers of a Litestar app.")
    @click.option(
        "--app", "app_path", envvar="LITESTAR_APP", required=True, help="The app as 'module:attribute'."
    )
    @click.pass_context
    def root(ctx: click.Context, app_path: str) -> None:
        if os.getcwd() not in sys.path:
            sys.path.append(os.getcwd())  # what the Litestar CLI does, so 'app:app' imports from here
        os.environ["LITESTAR_APP"] = app_path  # worker processes load the app from it
        ctx.obj = LazyApp(app_path)

    root.add_command(build_cli_app())
    root.main(args=list(args) if args is not None else None, prog_name="litestar-saq")


# --- workers run -------------------------------------------------------------------------------------
def _build_run_command() -> click.Command:
    @click.command(name="run")
    @click.option(
        "--process",
        "in_processes",
        is_flag=True,
        help="Run the workers in supervised child processes instead of this process.",
    )
    @click.option(
        "--workers",
        "processes",
        type=click.IntRange(min=1),
        default=None,
        help="With --process: child processes per queue (default: the queue's worker_processes).",
    )
    @click.option(
        "--queues",
        multiple=True,
        help="Names of the queues to run, comma-separated or repeated (default: all).",
    )
    @click.option("-v", "--verbose", is_flag=True, help="Log SAQ's activity (INFO), e.g. every job started.")
    @click.option("-d", "--debug", is_flag=True, help="Run the app in debug mode and log at DEBUG.")
    @click.option(
        "--metrics-port",
        type=click.IntRange(min=0, max=65535),
        default=None,
        help="Serve the job metrics of every worker (children summed) for Prometheus on this port.",
    )
    @click.pass_context
    def run_command(
        ctx: click.Context,
        in_processes: bool,
        processes: int | None,
        queues: tuple[str, ...],
        verbose: bool,
        debug: bool,
        metrics_port: int | None,
    ) -> None:
        """Run the workers of the app's queues until SIGINT/SIGTERM, then let running jobs finish.

        Without --process every selected queue's worker runs in this process, whatever its
        separate_process setting. With --process a supervisor starts child processes that load the app
        by its import path and restarts any that die.
        """
        app, app_path = loaded_app(ctx)
        config = config_of(ctx, app, app_path)
        # Repeating the option (upstream's form) and commas both work: --queues a --queues b, --queues a,b.
        selected = select_queues(ctx, config, ",".join(queues) or None)
        if processes is not None and not in_processes:
            fail(ctx, "--workers needs --process (without it the workers run in this one process)", 2)
        if debug:
            app.debug = True
        log_levels = _log_levels(verbose=verbose, debug=debug)
        apply_log_levels(log_levels)
        if metrics_port is not None:
            try:
                serve_job_metrics(metrics_port, several_processes=in_processes)
            except Exception as exc:
                fail(ctx, f"--metrics-port {metrics_port}: {exc}", 1)
        if in_processes:
            _run_in_processes(ctx, config, selected, app_path, processes, log_levels, debug)
        else:
            _run_here(ctx, app, selected)

    return run_command


def _run_here(ctx: click.Context, app: Litestar, selected: list[QueueConfig]) -> NoReturn:
    # This process is now a worker process: the plugin must not start its own in-process workers
    # (we run the selected ones) nor supervise children.
    mark_as_worker_child()
    try:
        exit_code = asyncio.run(
            serve_queues(app, [queue_config.name for queue_config in selected], handle_signals=True)
        )
    except WorkersCannotStartError as exc:
        fail(ctx, f"cannot start the workers: {exc}", 1)
    ctx.exit(exit_code)


def _run_in_processes(
    ctx: click.Context,
    config: SAQConfig,
    selected: list[QueueConfig],
    app_path: str | None,
    processes: int | None,
    log_levels: list[tuple[str, int]],
    debug: bool,
) -> NoReturn:
    in_memory = [queue_config.name for queue_config in selected if _is_in_memory(queue_config)]
    if in_memory:
        fail(
            ctx,
            f"queue(s) {quoted_names(in_memory)} keep their jobs in memory (memory://), which worker "
            "processes cannot share; run 'workers run' without --process, or give the queue a Redis or "
            "PostgreSQL dsn",
            2,
        )
    if not app_path:
        fail(ctx, "cannot tell the app's import path for the worker processes; pass --app module:app", 2)
    supervisor = Supervisor(
        app_path,
        {queue_config.name: processes or config.processes_for(queue_config) for queue_config in selected},
        drain_timeout_s=drain_timeout_for(selected),
        log_levels=log_levels,
        debug=debug,
    )
    ctx.exit(supervise_until_signalled(supervisor))


# --- workers status ----------------------------------------------------------------------------------
def _build_status_command() -> click.Command:
    @click.command(name="status")
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of text.")
    @click.pass_context
    def status_command(ctx: click.Context, as_json: bool) -> None:
        """Show every queue's broker, job counts and live workers; exit 1 if a broker is unreachable."""
        app, app_path = loaded_app(ctx)
        statuses, errors = asyncio.run(collect_status(config_of(ctx, app, app_path)))
        if as_json:
            click.echo(
                json.dumps({"queues": [status.to_dict() for status in statuses], "errors": errors}, indent=2)
            )
        else:
            for status in statuses:
                click.echo(_format_status(status))
        for error in errors:
            click.echo(f"Error: {error}", err=True)
        ctx.exit(1 if errors else 0)

    return status_command


def _format_status(status: QueueStatus) -> str:
    lines = [
        f"queue {status.name!r}  broker {status.broker}",
        f"  jobs: queued {status.queued}, active {status.active}, scheduled {status.scheduled}",
        f"  totals of live workers: complete {status.complete}, failed {status.failed}, "
        f"retried {status.retried}, aborted {status.aborted}",
        f"  live workers: {len(status.workers)}",
    ]
    lines += [
        f"    {worker.id}  pid {worker.pid}  host {worker.host}  up {_duration(worker.uptime_s)}"
        for worker in status.workers
    ]
    return "\n".join(lines)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return (
        f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
    )


# --- shared ------------------------------------------------------------------------------------------
def _is_in_memory(queue_config: QueueConfig) -> bool:
    if queue_config.scheme == "memory":
        return True
    from litestar_saq.backends.memory import MemoryQueue

    return isinstance(queue_config.broker_instance, MemoryQueue)


def _log_levels(*, verbose: bool, debug: bool) -> list[tuple[str, int]]:
    if debug:
        return [("litestar_saq", logging.DEBUG), ("saq", logging.DEBUG)]
    if verbose:
        return [("litestar_saq", logging.INFO), ("saq", logging.INFO)]
    levels = [("litestar_saq", logging.INFO)]
    if logging.getLogger("saq").level == logging.NOTSET:
        # SAQ logs every job at INFO; keep that for --verbose unless the app chose a level itself.
        levels.append(("saq", logging.WARNING))
    return levels
