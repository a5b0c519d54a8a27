"""litestar-saq: SAQ background jobs as a first-class part of a Litestar application."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar_saq.compat import OPENTELEMETRY_INSTALLED, Job, PostgresQueueOptions, RedisQueueOptions, Worker
from litestar_saq.config import CronJob, QueueConfig, SAQConfig
from litestar_saq.exceptions import (
    BrokerUnavailableError,
    LitestarSaqError,
    MissingExtraError,
    QueueNotFoundError,
    SAQConfigError,
)
from litestar_saq.handles import AsyncTaskHandle, BoundTask, SyncTaskHandle, TaskHandle, task
from litestar_saq.heartbeat import HeartbeatManager
from litestar_saq.hooks import (
    after_process_logger,
    before_process_logger,
    shutdown_logger,
    startup_logger,
    timing_after_process,
    timing_before_process,
)
from litestar_saq.injection import injected
from litestar_saq.job_logging import log_job_end, log_job_start
from litestar_saq.job_options import JobDefaults, JobOptions
from litestar_saq.monitoring import monitored_job
from litestar_saq.plugin import SAQPlugin
from litestar_saq.queues import TaskQueueRegistry, TaskQueues
from litestar_saq.sync_tasks import SyncJob
from litestar_saq.worker import TaskContext

if TYPE_CHECKING:
    from litestar_saq.backends.asyncpg import AsyncpgQueue as AsyncpgQueue
    from litestar_saq.backends.memory import MemoryQueue as MemoryQueue
    from litestar_saq.backends.redis import RedisQueue as RedisQueue

__all__ = (
    "OPENTELEMETRY_INSTALLED",
    "AsyncTaskHandle",
    "BoundTask",
    "BrokerUnavailableError",
    "CronJob",
    "HeartbeatManager",
    "Job",
    "JobDefaults",
    "JobOptions",
    "LitestarSaqError",
    "MissingExtraError",
    "PostgresQueueOptions",
    "QueueConfig",
    "QueueNotFoundError",
    "RedisQueueOptions",
    "SAQConfig",
    "SAQConfigError",
    "SAQPlugin",
    "SyncJob",
    "SyncTaskHandle",
    "TaskContext",
    "TaskHandle",
    "TaskQueueRegistry",
    "TaskQueues",
    "Worker",
    "after_process_logger",
    "before_process_logger",
    "injected",
    "log_job_end",
    "log_job_start",
    "monitored_job",
    "shutdown_logger",
    "startup_logger",
    "task",
    "timing_after_process",
    "timing_before_process",
)

# Queue classes load on first use, so importing litestar_saq imports no broker client (asyncpg is an
# optional extra). They are left out of __all__ so that a star import does not load them either.
_LAZY = {
    "AsyncpgQueue": "litestar_saq.backends.asyncpg",
    "MemoryQueue": "litestar_saq.backends.memory",
    "RedisQueue": "litestar_saq.backends.redis",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'litestar_saq' has no attribute {name!r}")
