"""Every public name of upstream litestar-saq 0.8 imports from the module paths upstream uses, and works."""

from __future__ import annotations

import ast
import importlib
import logging
from typing import Any

import pytest
from litestar import Litestar
from saq.job import Job as SAQJob
from saq.job import Status
from saq.worker import Worker as SAQWorker

import litestar_saq
from litestar_saq import HeartbeatManager, QueueConfig, SAQConfig, SAQPlugin, monitored_job
from litestar_saq.heartbeat import HeartbeatManagerRemovedError
from litestar_saq.hooks import (
    after_process_logger,
    before_process_logger,
    shutdown_logger,
    startup_logger,
    timing_after_process,
    timing_before_process,
)
from litestar_saq.testing import running_app, wait_for_job
from tests.compat.upstream_sdist import upstream_tree

UPSTREAM_ALL = (
    "OPENTELEMETRY_INSTALLED",
    "CronJob",
    "HeartbeatManager",
    "Job",
    "PostgresQueueOptions",
    "QueueConfig",
    "RedisQueueOptions",
    "SAQConfig",
    "SAQPlugin",
    "TaskQueues",
    "Worker",
    "after_process_logger",
    "before_process_logger",
    "monitored_job",
    "shutdown_logger",
    "startup_logger",
    "timing_after_process",
    "timing_before_process",
)
"""Upstream's ``litestar_saq.__all__`` (0.8.0)."""

UPSTREAM_MODULE_NAMES = {
    "litestar_saq.config": (
        "CronJob",
        "PostgresQueueOptions",
        "QueueConfig",
        "RedisQueueOptions",
        "SAQConfig",
        "TaskQueues",
    ),
    "litestar_saq.hooks": (
        "after_process_logger",
        "before_process_logger",
        "shutdown_logger",
        "startup_logger",
        "timing_after_process",
        "timing_before_process",
    ),
    "litestar_saq.heartbeat": ("HeartbeatManager",),
    "litestar_saq.typing": ("OPENTELEMETRY_INSTALLED", "STRUCTLOG_INSTALLED"),
    "litestar_saq.plugin": ("SAQPlugin",),
}
"""The other modules whose paths upstream documents (in their docstrings and examples), and their names."""


@pytest.mark.parametrize("name", UPSTREAM_ALL)
def test_every_upstream_name_imports_from_the_package(name: str) -> None:
    assert name in litestar_saq.__all__
    assert getattr(litestar_saq, name) is not None


@pytest.mark.parametrize(("module", "names"), UPSTREAM_MODULE_NAMES.items())
def test_upstream_module_paths_import(module: str, names: tuple[str, ...]) -> None:
    imported = importlib.import_module(module)
    for name in names:
        assert hasattr(imported, name), f"{module}.{name}"
        if name in UPSTREAM_ALL:
            assert getattr(imported, name) is getattr(litestar_saq, name)


def test_the_list_is_upstreams_all() -> None:
    """Checked against the upstream sdist itself (downloaded once, see upstream_sdist.py)."""
    source = (upstream_tree() / "litestar_saq" / "__init__.py").read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "__all__":
            assert set(ast.literal_eval(node.value)) == set(UPSTREAM_ALL)
            return
    raise AssertionError("no __all__ in upstream's litestar_saq/__init__.py")


def test_job_and_worker_are_saqs_so_isinstance_holds_for_what_the_plugin_runs() -> None:
    assert litestar_saq.Job is SAQJob
    assert litestar_saq.Worker is SAQWorker
    assert isinstance(litestar_saq.OPENTELEMETRY_INSTALLED, bool)


def test_heartbeat_manager_imports_but_says_to_use_monitored_job() -> None:
    with pytest.raises(HeartbeatManagerRemovedError, match=r"monitored_job"):
        HeartbeatManager(queue=None, flush_interval=30.0)
    with pytest.raises(TypeError):  # what code catching upstream's construction errors expects
        HeartbeatManager()


async def test_monitored_job_is_used_as_upstream_documents() -> None:
    @monitored_job()
    async def long_running_task(ctx: dict[str, Any]) -> dict[str, str]:
        return {"status": "complete"}

    @monitored_job(interval=30.0)
    async def train_model(ctx: dict[str, Any], model_id: str) -> dict[str, str]:
        return {"model_id": model_id}

    assert await long_running_task({}) == {"status": "complete"}
    assert await train_model({}, "m1") == {"model_id": "m1"}


class FakeWorker:
    id = "worker-1"


class FakeQueue:
    name = "emails"


class FakeJob:
    id = "saq:job:emails:k1"
    function = "send_email"
    status = Status.COMPLETE


async def test_worker_hooks_log_worker_id_and_queue(caplog: pytest.LogCaptureFixture) -> None:
    ctx = {"worker": FakeWorker(), "queue": FakeQueue()}
    with caplog.at_level(logging.INFO, logger="litestar_saq.hooks"):
        await startup_logger(ctx)
        await shutdown_logger(ctx)
    starting, stopping = caplog.records
    assert starting.getMessage().startswith("SAQ worker starting")
    assert stopping.getMessage().startswith("SAQ worker shutting down")
    for record, event in ((starting, "worker_startup"), (stopping, "worker_shutdown")):
        assert (record.worker_id, record.queue_name, record.event) == ("worker-1", "emails", event)  # type: ignore[attr-defined]


async def test_job_hooks_log_at_debug_and_time_at_info(caplog: pytest.LogCaptureFixture) -> None:
    ctx: dict[str, Any] = {"job": FakeJob()}
    with caplog.at_level(logging.DEBUG, logger="litestar_saq.hooks"):
        await before_process_logger(ctx)
        await timing_before_process(ctx)
        await timing_after_process(ctx)
        await after_process_logger(ctx)
    start, timing, end = caplog.records
    assert (start.levelno, start.event, start.function) == (logging.DEBUG, "job_start", "send_email")  # type: ignore[attr-defined]
    assert timing.levelno == logging.INFO
    assert timing.getMessage().startswith("Job completed in ")
    assert timing.duration_ms >= 0  # type: ignore[attr-defined]
    assert (end.levelno, end.status, end.job_id) == (logging.DEBUG, "complete", FakeJob.id)  # type: ignore[attr-defined]


async def test_timing_after_process_without_its_pair_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="litestar_saq.hooks"):
        await timing_after_process({"job": FakeJob()})
    assert "without timing_before_process" in caplog.records[0].getMessage()


class RecordList(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def double(ctx: dict[str, Any], *, number: int) -> int:
    return number * 2


async def test_the_hooks_run_in_a_real_worker() -> None:
    plugin = SAQPlugin(
        SAQConfig(
            queue_configs=[
                QueueConfig(
                    name="hooked",
                    dsn="memory://",
                    separate_process=False,
                    tasks=[double],
                    startup=[startup_logger],
                    shutdown=[shutdown_logger],
                    before_process=[timing_before_process, before_process_logger],
                    after_process=[timing_after_process, after_process_logger],
                )
            ]
        )
    )
    app = Litestar(plugins=[plugin])
    records = RecordList()
    hooks_logger = logging.getLogger("litestar_saq.hooks")
    hooks_logger.addHandler(records)  # the app's logging config may replace caplog's root handler
    previous_level, hooks_logger.level = hooks_logger.level, logging.DEBUG
    try:
        async with running_app(app):
            job = await plugin.task_queues.get("hooked").enqueue("double", number=21, timeout=10)
            assert job is not None
            assert (await wait_for_job(app, "hooked", job.key)).result == 42
    finally:
        hooks_logger.removeHandler(records)
        hooks_logger.setLevel(previous_level)
    events = [getattr(record, "event", None) for record in records.records]
    assert events == ["worker_startup", "job_start", "job_timing", "job_complete", "worker_shutdown"]
