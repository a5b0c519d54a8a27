"""An app for the worker and CLI tests, configured by environment variables so every test has its own queues.

``TEST_QUEUE`` names a ``separate_process`` queue; ``TEST_QUEUE_IN_APP`` (optional) a queue whose
worker runs inside the app process. ``TEST_DSN`` overrides the broker, ``TEST_GRACE`` the grace period,
``TEST_FAIL_IN_CHILD`` makes worker processes fail (``import``: the app does not import;
``startup``: the worker's startup hook raises), ``TEST_SERVER_LIFESPAN=1`` sets ``use_server_lifespan``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from litestar import Litestar, get

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin
from litestar_saq.runtime import CHILD_PROCESS_ENV

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
FAIL_IN_CHILD = os.environ.get("TEST_FAIL_IN_CHILD", "") if os.environ.get(CHILD_PROCESS_ENV) else ""

if FAIL_IN_CHILD == "import":
    raise RuntimeError("this app refuses to import in a worker process (TEST_FAIL_IN_CHILD=import)")


async def report(ctx: dict[str, Any]) -> dict[str, Any]:
    """Say which process ran the job and what the app's startup hook put in the state."""
    logging.getLogger("tests.workers.apps").info("report job ran in process %d", os.getpid())
    return {"pid": os.getpid(), "greeting": ctx["state"]["greeting"], "queue": ctx["queue"].name}


async def sleep_for(ctx: dict[str, Any], *, seconds: float) -> str:
    # Tests wait for this line: from here on the job is running its function.
    logging.getLogger("tests.workers.apps").warning("sleep_for started in process %d", os.getpid())
    await asyncio.sleep(seconds)
    return "slept"


async def noop(ctx: dict[str, Any]) -> None:
    return None


async def fail_startup(ctx: dict[str, Any]) -> None:
    if FAIL_IN_CHILD == "startup":
        raise RuntimeError("worker startup hook failed on purpose (TEST_FAIL_IN_CHILD=startup)")


def put_greeting(app: Litestar) -> None:
    app.state.greeting = f"hello from on_startup in {os.getpid()}"


@get("/health")
async def health() -> dict[str, int]:
    return {"pid": os.getpid()}


def queue_config(name: str, *, separate_process: bool) -> QueueConfig:
    return QueueConfig(
        name=name,
        dsn=os.environ.get("TEST_DSN", REDIS_URL),
        tasks=[report, sleep_for, noop],
        startup=fail_startup,
        concurrency=int(os.environ.get("TEST_CONCURRENCY", "10")),
        timers={"worker_info": 1, "sweep": 600},
        shutdown_grace_period_s=int(os.environ.get("TEST_GRACE", "10")),
        cancellation_hard_deadline_s=1.0,
        separate_process=separate_process,
    )


queue_configs = [queue_config(os.environ["TEST_QUEUE"], separate_process=True)]
if os.environ.get("TEST_QUEUE_IN_APP"):
    queue_configs.append(queue_config(os.environ["TEST_QUEUE_IN_APP"], separate_process=False))

app = Litestar(
    route_handlers=[health],
    plugins=[
        SAQPlugin(
            SAQConfig(
                queue_configs=queue_configs, use_server_lifespan=os.environ.get("TEST_SERVER_LIFESPAN") == "1"
            )
        )
    ],
    on_startup=[put_greeting],
)
