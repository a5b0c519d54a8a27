"""An app with a ``memory://`` queue (its worker can only run in the app's own process)."""

from __future__ import annotations

from typing import Any

from litestar import Litestar

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin


async def noop(ctx: dict[str, Any]) -> None:
    return None


app = Litestar(
    plugins=[
        SAQPlugin(
            SAQConfig(
                queue_configs=[
                    QueueConfig(name="in-memory", dsn="memory://", tasks=[noop], separate_process=False)
                ]
            )
        )
    ]
)
