"""One structured log line per job run, from the hooks of ``litestar_saq.job_logging``."""

from __future__ import annotations

from litestar import Litestar
from litestar.logging import LoggingConfig

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin, TaskContext


async def resize_image(ctx: TaskContext, *, image_id: int) -> int:
    return image_id


saq = SAQPlugin(
    SAQConfig(
        queue_configs=[
            QueueConfig(
                dsn="memory://",
                tasks=[resize_image],
                before_process=["litestar_saq.job_logging.log_job_start"],
                after_process=["litestar_saq.job_logging.log_job_end"],
                separate_process=False,
            )
        ]
    )
)

app = Litestar(
    plugins=[saq],
    logging_config=LoggingConfig(loggers={"litestar_saq.jobs": {"level": "INFO", "propagate": True}}),
)
