"""A configuration that uses most settings; every field is described on the configuration page."""

from __future__ import annotations

import os

from litestar import Litestar

from litestar_saq import CronJob, QueueConfig, SAQConfig, SAQPlugin

BROKER = os.environ.get("SAQ_DSN", "redis://localhost:6379/0")

saq = SAQPlugin(
    SAQConfig(
        queue_configs=[
            QueueConfig(
                name="default",
                dsn=BROKER,
                tasks=[
                    "docs.examples.tasks.send_welcome_email",  # a dotted path…
                    ("reindex", "docs.examples.tasks.rebuild_index"),  # …or a (name, task) pair
                ],
                scheduled_tasks=[
                    CronJob(function="docs.examples.tasks.cleanup", cron="0 3 * * *", timeout=600),
                ],
                cron_tz="Europe/Paris",
                concurrency=20,
                startup="docs.examples.tasks.open_http_client",
                separate_process=True,  # workers run in their own processes
                worker_processes=2,
                shutdown_grace_period_s=30,
            ),
            QueueConfig(
                name="reports",
                dsn=BROKER,
                tasks=["docs.examples.tasks.rebuild_index"],
                concurrency=2,
                separate_process=True,
            ),
        ],
        use_server_lifespan=True,  # `litestar run` starts the worker processes too
        web_enabled=True,
    )
)

app = Litestar(plugins=[saq])
