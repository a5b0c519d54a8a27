"""Read every queue's counts and live workers from its broker: ``litestar workers status`` and ``health``."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from litestar_saq.brokers import queue_from_config
from litestar_saq.dsn import describe_broker, redact
from litestar_saq.exceptions import BrokerUnavailableError
from litestar_saq.worker import HEARTBEAT_AT

if TYPE_CHECKING:
    from collections.abc import Collection

    from saq.queue import Queue

    from litestar_saq.config import QueueConfig, SAQConfig

__all__ = ("STATUS_TIMEOUT_S", "QueueStatus", "WorkerStatus", "collect_status", "status_of")

STATUS_TIMEOUT_S = 10.0
"""How long a broker gets to answer before its queue is reported unreachable."""


@dataclass
class WorkerStatus:
    """A live worker as SAQ last recorded it."""

    id: str
    pid: int | None
    host: str | None
    uptime_s: float | None
    heartbeat_age_s: float | None = None
    """Seconds since the worker's last heartbeat; ``None`` for a worker that does not date it (plain SAQ)."""


@dataclass
class QueueStatus:
    """A queue's job counts and the totals of its live workers' stats."""

    name: str
    broker: str
    queued: int
    active: int
    scheduled: int
    complete: int = 0
    failed: int = 0
    retried: int = 0
    aborted: int = 0
    workers: list[WorkerStatus] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return asdict(self)


def _broker_of(queue_config: QueueConfig) -> str:
    return describe_broker(queue_config.dsn if queue_config.dsn is not None else queue_config.broker_instance)


async def collect_status(
    config: SAQConfig, queue_names: Collection[str] | None = None
) -> tuple[list[QueueStatus], list[str]]:
    """Connect to every queue's broker (or those of ``queue_names``) and read its status; return the
    statuses and one error line per queue whose broker could not be read."""
    queue_configs = [
        queue_config
        for queue_config in config.queue_configs
        if queue_names is None or queue_config.name in queue_names
    ]
    results = await asyncio.gather(
        *(_queue_status(queue_config, config) for queue_config in queue_configs),
        return_exceptions=True,
    )
    statuses: list[QueueStatus] = []
    errors: list[str] = []
    for queue_config, result in zip(queue_configs, results, strict=True):
        if isinstance(result, QueueStatus):
            statuses.append(result)
        elif isinstance(result, BrokerUnavailableError):
            errors.append(redact(" ".join(str(result).split())))
        elif isinstance(result, asyncio.TimeoutError):
            errors.append(
                f"queue {queue_config.name!r}: broker {_broker_of(queue_config)} did not answer within "
                f"{STATUS_TIMEOUT_S:.0f} s"
            )
        elif isinstance(result, Exception):
            errors.append(
                f"queue {queue_config.name!r}: cannot read status from {_broker_of(queue_config)}: "
                f"{type(result).__name__}: {redact(' '.join(str(result).split()))}"
            )
        else:
            raise result  # KeyboardInterrupt and the like
    return statuses, errors


async def _queue_status(queue_config: QueueConfig, config: SAQConfig) -> QueueStatus:
    queue, owned = queue_from_config(queue_config, config)
    try:
        if owned:
            await asyncio.wait_for(queue.connect(), STATUS_TIMEOUT_S)
        return await status_of(queue, _broker_of(queue_config))
    finally:
        if owned:
            # Closing a client that never connected may fail too; the first error is the one to show.
            with contextlib.suppress(Exception):
                await queue.disconnect()


async def status_of(queue: Queue, broker: str) -> QueueStatus:
    """Read the status of a connected ``queue`` (``broker``: its masked description)."""
    info = await asyncio.wait_for(queue.info(jobs=False), STATUS_TIMEOUT_S)
    now_ms = time.time() * 1000
    status = QueueStatus(
        name=queue.name,
        broker=broker,
        queued=int(info.get("queued") or 0),
        active=int(info.get("active") or 0),
        scheduled=int(info.get("scheduled") or 0),
    )
    for worker_id, worker_info in sorted((info.get("workers") or {}).items()):
        stats: dict[str, Any] = dict(worker_info.get("stats") or {})
        metadata: dict[str, Any] = dict(worker_info.get("metadata") or {})
        status.complete += int(stats.get("complete") or 0)
        status.failed += int(stats.get("failed") or 0)
        status.retried += int(stats.get("retried") or 0)
        status.aborted += int(stats.get("aborted") or 0)
        uptime_ms = stats.get("uptime")
        heartbeat_at = metadata.get(HEARTBEAT_AT)
        status.workers.append(
            WorkerStatus(
                id=str(worker_id),
                pid=metadata.get("pid"),
                host=metadata.get("host"),
                uptime_s=uptime_ms / 1000 if isinstance(uptime_ms, (int, float)) else None,
                heartbeat_age_s=(
                    max(0.0, (now_ms - heartbeat_at) / 1000)
                    if isinstance(heartbeat_at, (int, float))
                    else None
                ),
            )
        )
    return status
