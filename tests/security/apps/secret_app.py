"""An app whose broker DSNs carry a password (``SECRET_REDIS_DSN``, ``SECRET_PG_DSN``), for the leak test."""

from __future__ import annotations

import os
from typing import Any

from litestar import Litestar

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin


async def ok(ctx: dict[str, Any]) -> str:
    return "ok"


async def boom(ctx: dict[str, Any]) -> None:
    raise RuntimeError("this job fails on purpose")


def queue(name: str, dsn: str) -> QueueConfig:
    return QueueConfig(name=name, dsn=dsn, tasks=[ok, boom], separate_process=False, timers={"sweep": 1})


app = Litestar(
    plugins=[
        SAQPlugin(
            SAQConfig(
                queue_configs=[
                    queue(
                        os.environ.get("SECRET_REDIS_QUEUE", "secret-redis"), os.environ["SECRET_REDIS_DSN"]
                    ),
                    queue(os.environ.get("SECRET_PG_QUEUE", "secret-pg"), os.environ["SECRET_PG_DSN"]),
                ],
                web_enabled=True,
                web_guards=[],
            )
        )
    ],
)
