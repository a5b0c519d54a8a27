"""Operations commands of ``litestar workers``: ``health``, ``enqueue``, ``job``, ``abort``,
``retry-failed`` and ``purge``.

Each connects to the queue's broker itself (the app's lifespan does not run), prints Rich text or one
JSON document (``--json``), and exits 2 for an unknown queue, task or job key, 1 when a broker fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click
from saq.job import Status

from litestar_saq.brokers import queue_from_config
from litestar_saq.cli_common import config_of, fail, loaded_app, quoted_names, select_queues
from litestar_saq.dsn import redact
from litestar_saq.exceptions import InvalidValueError
from litestar_saq.health import DEFAULT_MAX_HEARTBEAT_AGE_S, check_health
from litestar_saq.purge import PURGEABLE_STATUSES, purge_jobs
from litestar_saq.task_setup import task_plans
from litestar_saq.web.context import job_view

if TYPE_CHECKING:
    from saq.job import Job
    from saq.queue import Queue

    from litestar_saq.config import QueueConfig, SAQConfig

__all__ = ("build_ops_commands", "parse_duration")

T = TypeVar("T")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of text.")
queue_option = click.option("--queue", "queue_name", required=True, help="The queue's name.")


def parse_duration(text: str) -> float:
    """Seconds in ``"90"``, ``"30s"``, ``"15m"``, ``"2h"`` or ``"7d"``; ``ValueError`` otherwise."""
    match = _DURATION.match(text)
    if match is None:
        raise InvalidValueError(f"{text!r} is no duration; write e.g. 30s, 15m, 2h or 7d")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def build_ops_commands() -> list[click.Command]:
    """Return the operations commands to add to the ``workers`` group."""
    return [health_command, enqueue_command, job_command, abort_command, retry_failed_command, purge_command]


def _queue_config(ctx: click.Context, queue_name: str) -> tuple[SAQConfig, QueueConfig]:
    app, app_path = loaded_app(ctx)
    config = config_of(ctx, app, app_path)
    return config, select_queues(ctx, config, queue_name, "--queue")[0]


@asynccontextmanager
async def _connected(queue_config: QueueConfig, config: SAQConfig) -> AsyncIterator[Queue]:
    queue, owned = queue_from_config(queue_config, config)
    if owned:
        await queue.connect()
    try:
        yield queue
    finally:
        if owned:
            with contextlib.suppress(Exception):
                await queue.disconnect()


def _run_on_queue(ctx: click.Context, queue_name: str, action: Callable[[Queue], Awaitable[T]]) -> T:
    """Run ``action`` on the connected queue ``queue_name``; a broker error exits 1 with one masked line."""
    config, queue_config = _queue_config(ctx, queue_name)

    async def run() -> T:
        async with _connected(queue_config, config) as queue:
            return await action(queue)

    try:
        return asyncio.run(run())
    except click.exceptions.Exit:
        raise
    except Exception as exc:
        fail(ctx, f"queue {queue_name!r}: {type(exc).__name__}: {redact(' '.join(str(exc).split()))}", 1)


def _json_and_context(function: Callable[..., None]) -> Callable[..., None]:
    """``--json`` and the click context, which every ops command takes."""
    decorated: Callable[..., None] = json_option(click.pass_context(function))
    return decorated


def _show(ctx: click.Context, as_json: bool, data: dict[str, Any], title: str) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=False)
    for key, value in data.items():
        table.add_row(str(key), value if isinstance(value, str) else json.dumps(value, default=str))
    Console(soft_wrap=True).print(table)


async def _job_or_exit(ctx: click.Context, queue: Queue, key: str) -> Job:
    job = await queue.job(key)
    if job is None:
        fail(ctx, f"queue {queue.name!r} has no job with key {key!r}", 2)
    return job


# --- health ------------------------------------------------------------------------------------------
@click.command(name="health")
@click.option("--queues", default=None, help="Queues to check, comma-separated (default: all).")
@click.option(
    "--max-heartbeat-age",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_MAX_HEARTBEAT_AGE_S,
    show_default=True,
    help="Seconds since a worker's last heartbeat for it to count as live.",
)
@_json_and_context
def health_command(ctx: click.Context, queues: str | None, max_heartbeat_age: float, as_json: bool) -> None:
    """Exit 0 when every queue's broker answers and has a live worker with a fresh heartbeat, else 1
    with one line per problem: a Kubernetes liveness/readiness exec probe."""
    app, app_path = loaded_app(ctx)
    config = config_of(ctx, app, app_path)
    selected = [queue_config.name for queue_config in select_queues(ctx, config, queues)]
    report = asyncio.run(check_health(config, selected, max_heartbeat_age))
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    elif report.healthy:
        click.echo(f"healthy: {quoted_names(selected)}")
    for problem in report.problems:
        click.echo(problem, err=True)
    ctx.exit(0 if report.healthy else 1)


# --- enqueue, job, abort -----------------------------------------------------------------------------
@click.command(name="enqueue")
@click.argument("function")
@queue_option
@click.option("--kwargs", "kwargs_json", default="{}", help="The job's keyword arguments as a JSON object.")
@click.option(
    "--key", default=None, help="The job's key (default: a new one); an existing key is not enqueued twice."
)
@click.option("--scheduled", default=None, help="Run at this ISO 8601 time (no zone: local time).")
@_json_and_context
def enqueue_command(
    ctx: click.Context,
    function: str,
    queue_name: str,
    kwargs_json: str,
    key: str | None,
    scheduled: str | None,
    as_json: bool,
) -> None:
    """Enqueue a job of task FUNCTION on a queue."""
    config, queue_config = _queue_config(ctx, queue_name)
    known = sorted(task_plans(queue_config, config))
    if function not in known:
        fail(
            ctx,
            f"queue {queue_name!r} has no task {function!r}; its tasks: {quoted_names(known) or 'none'}",
            2,
        )
    try:
        kwargs = json.loads(kwargs_json)
    except json.JSONDecodeError as exc:
        fail(ctx, f"--kwargs is not JSON: {exc}", 2)
    if not isinstance(kwargs, dict):
        fail(ctx, "--kwargs must be a JSON object, e.g. '{\"user_id\": 1}'", 2)
    options: dict[str, Any] = {"key": key} if key else {}
    if scheduled:
        try:
            options["scheduled"] = int(datetime.fromisoformat(scheduled).timestamp())
        except ValueError:
            fail(
                ctx, f"--scheduled {scheduled!r} is no ISO 8601 time; write e.g. 2030-01-31T08:00:00+00:00", 2
            )

    async def enqueue(queue: Queue) -> Job | None:
        return await queue.enqueue(function, **options, **kwargs)

    job = _run_on_queue(ctx, queue_name, enqueue)
    if job is None:
        fail(ctx, f"queue {queue_name!r}: a job with key {key!r} is already queued or running", 1)
    _show(ctx, as_json, job_view(job), f"enqueued {job.key}")


def _job_key_command(name: str) -> Callable[[Callable[..., None]], click.Command]:
    """``@click.command(name)`` for a command on one job: argument KEY, ``--queue``, ``--json``."""

    def decorate(function: Callable[..., None]) -> click.Command:
        for add in (_json_and_context, queue_option, click.argument("key")):
            function = add(function)
        return click.command(name=name)(function)

    return decorate


@_job_key_command("job")
def job_command(ctx: click.Context, key: str, queue_name: str, as_json: bool) -> None:
    """Show the job KEY: status, arguments, result or error, attempts and times."""
    job = _run_on_queue(ctx, queue_name, lambda queue: _job_or_exit(ctx, queue, key))
    _show(ctx, as_json, job_view(job), f"job {key}")


@_job_key_command("abort")
def abort_command(ctx: click.Context, key: str, queue_name: str, as_json: bool) -> None:
    """Abort the job KEY: a queued job at once, a running one within a second; it is not retried."""

    async def abort(queue: Queue) -> Job:
        job = await _job_or_exit(ctx, queue, key)
        await job.abort("aborted from the CLI")
        return job

    job = _run_on_queue(ctx, queue_name, abort)
    _show(ctx, as_json, {"key": job.key, "status": job.status.value}, f"aborting {key}")


# --- retry-failed, purge -----------------------------------------------------------------------------
async def _jobs_in(
    queue: Queue,
    status: Status,
    *,
    function: str | None = None,
    finished_before: float | None = None,
    finished_after: float | None = None,
) -> list[Job]:
    found = []
    async for job in queue.iter_jobs(statuses=[status], batch_size=1000):
        stamp = (job.completed or job.touched or job.queued or 0) / 1000
        if function is not None and job.function != function:
            continue
        if finished_before is not None and stamp > finished_before:
            continue
        if finished_after is not None and stamp < finished_after:
            continue
        found.append(job)
    return found


def _duration_or_exit(ctx: click.Context, option: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        fail(ctx, f"{option}: {exc}", 2)


@click.command(name="retry-failed")
@queue_option
@click.option("--function", default=None, help="Only jobs of this task.")
@click.option("--since", default=None, help="Only jobs that failed within this long, e.g. 30m, 2h, 1d.")
@_json_and_context
def retry_failed_command(
    ctx: click.Context, queue_name: str, function: str | None, since: str | None, as_json: bool
) -> None:
    """Put the queue's failed jobs back in the queue (a new attempt each)."""
    since_s = _duration_or_exit(ctx, "--since", since)
    config, queue_config = _queue_config(ctx, queue_name)
    if function is not None and function not in task_plans(queue_config, config):
        fail(ctx, f"queue {queue_name!r} has no task {function!r}", 2)

    async def retry(queue: Queue) -> list[str]:
        after = time.time() - since_s if since_s is not None else None
        jobs = await _jobs_in(queue, Status.FAILED, function=function, finished_after=after)
        for job in jobs:
            await job.retry("retried from the CLI")
        return [job.key for job in jobs]

    retried = _run_on_queue(ctx, queue_name, retry)
    _show(ctx, as_json, {"queue": queue_name, "retried": len(retried), "keys": retried}, "retry-failed")


@click.command(name="purge")
@queue_option
@click.option(
    "--status",
    "status_name",
    required=True,
    type=click.Choice([status.value for status in PURGEABLE_STATUSES]),
)
@click.option(
    "--older-than", default=None, help="Only jobs finished (or queued) longer ago than this, e.g. 7d."
)
@click.option("--yes", is_flag=True, help="Really delete: purge refuses without it.")
@_json_and_context
def purge_command(
    ctx: click.Context, queue_name: str, status_name: str, older_than: str | None, yes: bool, as_json: bool
) -> None:
    """Delete the queue's jobs in one status (failed, aborted or queued); active jobs are never touched."""
    older_than_s = _duration_or_exit(ctx, "--older-than", older_than)
    if not yes:
        fail(ctx, f"purge deletes {status_name} jobs of queue {queue_name!r} for good; add --yes to do it", 2)
    status = Status(status_name)

    async def purge(queue: Queue) -> int:
        before = time.time() - older_than_s if older_than_s is not None else None
        return await purge_jobs(queue, await _jobs_in(queue, status, finished_before=before), status)

    deleted = _run_on_queue(ctx, queue_name, purge)
    _show(ctx, as_json, {"queue": queue_name, "status": status_name, "deleted": deleted}, "purge")
