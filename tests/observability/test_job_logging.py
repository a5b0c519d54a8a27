"""The job logging hooks on a real Redis: one structured line per run, at a level that fits its outcome."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from litestar import Litestar
from saq.job import Status

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin
from litestar_saq.backends.redis import RedisQueue
from litestar_saq.job_logging import JOB_LOGGER_NAME
from litestar_saq.testing import running_app, wait_for_job
from tests.support.poll import wait_until

FIELDS = ("queue", "task", "job_key", "attempts", "duration_ms", "status")


async def logged_sleep(ctx: dict[str, Any], *, seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "slept"


async def logged_fail(ctx: dict[str, Any]) -> None:
    raise ValueError("broken on purpose")


def make_app(queue_name: str, redis_url: str, *, with_start_hook: bool = True) -> Litestar:
    queue_config = QueueConfig(
        name=queue_name,
        dsn=redis_url,
        tasks=[logged_sleep, logged_fail],
        separate_process=False,
        shutdown_grace_period_s=0,
        timers={"abort": 0.1},
        before_process=["litestar_saq.job_logging.log_job_start"] if with_start_hook else [],
        after_process=["litestar_saq.job_logging.log_job_end"],
    )
    # No logging config of the app's own: it would replace the handler that caplog installed.
    return Litestar(
        plugins=[SAQPlugin(SAQConfig(queue_configs=[queue_config], enable_otel=False))], logging_config=None
    )


@pytest.fixture
def job_records(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Captures the job logger at INFO and above (read ``.records`` when needed: it is per test phase)."""
    caplog.set_level(logging.INFO, logger=JOB_LOGGER_NAME)
    return caplog


def records_for(captured: pytest.LogCaptureFixture, key: str) -> list[logging.LogRecord]:
    return [
        record
        for record in captured.records
        if record.name == JOB_LOGGER_NAME and getattr(record, "job_key", None) == key
    ]


async def test_complete_job_logs_one_info_line_with_every_field(
    redis_url: str, queue_name: str, redis_queue: RedisQueue, job_records: pytest.LogCaptureFixture
) -> None:
    async with running_app(make_app(queue_name, redis_url)):
        job = await redis_queue.enqueue("logged_sleep", seconds=0.05)
        assert job is not None
        await wait_for_job(redis_queue, None, job.key)
        [record] = await wait_until(lambda: records_for(job_records, job.key))
    assert record.levelno == logging.INFO
    assert {field: getattr(record, field) for field in FIELDS if field != "duration_ms"} == {
        "queue": queue_name,
        "task": "logged_sleep",
        "job_key": job.key,
        "attempts": 1,
        "status": "complete",
    }
    duration_ms: float = getattr(record, "duration_ms")  # noqa: B009  # an ``extra`` field
    assert 50 <= duration_ms < 5000
    message = record.getMessage()
    for text in (
        "job complete",
        f"queue={queue_name}",
        "task=logged_sleep",
        f"key={job.key}",
        "attempts=1",
        "duration_ms=",
    ):
        assert text in message
    assert record.exc_info is None


async def test_failed_job_logs_error_with_traceback_after_a_retry_warning(
    redis_url: str, queue_name: str, redis_queue: RedisQueue, job_records: pytest.LogCaptureFixture
) -> None:
    async with running_app(make_app(queue_name, redis_url)):
        job = await redis_queue.enqueue("logged_fail", retries=2)
        assert job is not None
        assert (await wait_for_job(redis_queue, None, job.key)).status == Status.FAILED
        retried, failed = await wait_until(
            lambda: len(records_for(job_records, job.key)) == 2 and records_for(job_records, job.key)
        )
    assert (retried.levelno, getattr(retried, "status"), getattr(retried, "attempts")) == (  # noqa: B009
        logging.WARNING,
        "retried",
        1,
    )
    assert (failed.levelno, getattr(failed, "status"), getattr(failed, "attempts")) == (  # noqa: B009
        logging.ERROR,
        "failed",
        2,
    )
    for record in (retried, failed):
        assert record.exc_info is not None
        assert record.exc_info[0] is ValueError
    assert "job failed" in failed.getMessage()
    assert "broken on purpose" in logging.Formatter().format(failed)  # the traceback is in the output
    assert "Traceback" in logging.Formatter().format(failed)


async def test_aborted_job_logs_a_warning_with_the_reason(
    redis_url: str, queue_name: str, redis_queue: RedisQueue, job_records: pytest.LogCaptureFixture
) -> None:
    async with running_app(make_app(queue_name, redis_url)):
        job = await redis_queue.enqueue("logged_sleep", seconds=60, timeout=0)
        assert job is not None

        async def running() -> bool:
            stored = await redis_queue.job(job.key)
            return stored is not None and stored.status == Status.ACTIVE

        await wait_until(running)
        await redis_queue.abort(job, "not needed any more")
        await wait_for_job(redis_queue, None, job.key)
        [record] = await wait_until(lambda: records_for(job_records, job.key))
    assert record.levelno == logging.WARNING
    assert getattr(record, "status") == "aborted"  # noqa: B009
    assert "not needed any more" in record.getMessage()


async def test_without_the_start_hook_the_duration_comes_from_the_job(
    redis_url: str, queue_name: str, redis_queue: RedisQueue, job_records: pytest.LogCaptureFixture
) -> None:
    async with running_app(make_app(queue_name, redis_url, with_start_hook=False)):
        job = await redis_queue.enqueue("logged_sleep", seconds=0.05)
        assert job is not None
        await wait_for_job(redis_queue, None, job.key)
        [record] = await wait_until(lambda: records_for(job_records, job.key))
    assert getattr(record, "status") == "complete"  # noqa: B009
    assert 40 <= getattr(record, "duration_ms") < 5000  # noqa: B009  # millisecond timestamps
