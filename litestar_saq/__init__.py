"""litestar-saq: SAQ background jobs as a first-class part of a Litestar application."""

from __future__ import annotations

from litestar_saq.config import CronJob, QueueConfig, SAQConfig
from litestar_saq.exceptions import (
    BrokerUnavailableError,
    MissingExtraError,
    QueueNotFoundError,
    SAQConfigError,
)
from litestar_saq.job_logging import log_job_end, log_job_start
from litestar_saq.monitoring import monitored_job
from litestar_saq.plugin import SAQPlugin
from litestar_saq.queues import TaskQueueRegistry, TaskQueues
from litestar_saq.worker import TaskContext

__all__ = (
    "BrokerUnavailableError",
    "CronJob",
    "MissingExtraError",
    "QueueConfig",
    "QueueNotFoundError",
    "SAQConfig",
    "SAQConfigError",
    "SAQPlugin",
    "TaskContext",
    "TaskQueueRegistry",
    "TaskQueues",
    "log_job_end",
    "log_job_start",
    "monitored_job",
)
