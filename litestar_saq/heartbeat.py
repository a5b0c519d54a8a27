"""``HeartbeatManager``, upstream litestar-saq's batched heartbeat thread: kept as a name only.

Here ``monitored_job`` sends each running job's heartbeats itself, on the worker's event loop, and stops
them the moment the job ends or is aborted; no manager is needed, and none is put in ``ctx``. Building a
``HeartbeatManager`` fails with an error that says so.
"""

from __future__ import annotations

from typing import Any

from litestar_saq.exceptions import LitestarSaqError

__all__ = ("HeartbeatManager", "HeartbeatManagerRemovedError")


class HeartbeatManagerRemovedError(LitestarSaqError, TypeError):
    """Code builds upstream's ``HeartbeatManager``, which this package replaces with ``monitored_job``."""


class HeartbeatManager:
    """Upstream's heartbeat batching thread. Not needed here: decorate long tasks with ``monitored_job``.

    Raises:
        HeartbeatManagerRemovedError: always, on construction, saying what to use instead.
    """

    def __init__(self, queue: Any = None, flush_interval: float = 30.0) -> None:
        raise HeartbeatManagerRemovedError(
            "litestar_saq.HeartbeatManager is not needed with this package: decorate long tasks with "
            "@litestar_saq.monitored_job() (it sends the job's heartbeats itself, every half of the job's "
            "heartbeat); remove the HeartbeatManager and any ctx['heartbeat_manager'] use"
        )
