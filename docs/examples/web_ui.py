"""The dashboard at /saq, behind the app's own guard."""

from __future__ import annotations

import os

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import BaseRouteHandler

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin, TaskContext

ADMIN_TOKEN = os.environ.get("ADMIN_TOKEN", "change-me")


async def echo(ctx: TaskContext, *, value: str) -> str:
    return value


def admins_only(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """A guard: replace with your app's own check (session, JWT, …)."""
    if connection.headers.get("Authorization") != f"Bearer {ADMIN_TOKEN}":
        raise NotAuthorizedException("the queue dashboard is for admins")


saq = SAQPlugin(
    SAQConfig(
        queue_configs=[QueueConfig(dsn="memory://", tasks=[echo], separate_process=False)],
        web_enabled=True,
        web_path="/saq",
        web_guards=[admins_only],
    )
)
app = Litestar(plugins=[saq])
