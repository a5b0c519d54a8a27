"""Are the queues healthy? Every broker answers and has a live worker with a fresh heartbeat.

``litestar workers health`` (a Kubernetes exec probe) and the dashboard's ``/saq/health`` (an HTTP
probe) both judge with :func:`find_problems`, so they always agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from litestar_saq._status import QueueStatus, collect_status

if TYPE_CHECKING:
    from collections.abc import Collection

    from litestar_saq.config import SAQConfig

__all__ = ("DEFAULT_MAX_HEARTBEAT_AGE_S", "HealthReport", "check_health", "find_problems")

DEFAULT_MAX_HEARTBEAT_AGE_S = 60.0
"""A worker whose last heartbeat is older than this is not counted as live (its entry expires sooner
with the default ``timers["worker_info"]`` of 5 s)."""


@dataclass
class HealthReport:
    """What a health check found: the queues' statuses and one line per problem."""

    statuses: list[QueueStatus]
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        """True when there is no problem."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json`` and ``/saq/health``."""
        return {
            "healthy": self.healthy,
            "problems": self.problems,
            "queues": [
                {
                    "name": status.name,
                    "broker": status.broker,
                    "live_workers": len(status.workers),
                    "newest_heartbeat_age_s": _newest_heartbeat_age(status),
                    "queued": status.queued,
                    "active": status.active,
                }
                for status in self.statuses
            ],
        }


def _newest_heartbeat_age(status: QueueStatus) -> float | None:
    ages = [worker.heartbeat_age_s for worker in status.workers if worker.heartbeat_age_s is not None]
    return round(min(ages), 3) if ages else None


def find_problems(statuses: list[QueueStatus], max_heartbeat_age_s: float) -> list[str]:
    """One line per queue without a live worker whose heartbeat is at most ``max_heartbeat_age_s`` old.

    A listed worker that does not date its heartbeat (a plain SAQ worker) counts as fresh: its entry
    expires one second after its ``worker_info`` interval anyway.
    """
    problems = []
    for status in statuses:
        if not status.workers:
            problems.append(f"queue {status.name!r}: no live worker (broker {status.broker})")
            continue
        fresh = [
            worker
            for worker in status.workers
            if worker.heartbeat_age_s is None or worker.heartbeat_age_s <= max_heartbeat_age_s
        ]
        if not fresh:
            problems.append(
                f"queue {status.name!r}: no worker heartbeat in the last {max_heartbeat_age_s:g} s "
                f"(newest {_newest_heartbeat_age(status)} s ago)"
            )
    return problems


async def check_health(
    config: SAQConfig,
    queue_names: Collection[str] | None = None,
    max_heartbeat_age_s: float = DEFAULT_MAX_HEARTBEAT_AGE_S,
) -> HealthReport:
    """Connect to the brokers of ``queue_names`` (default: all queues) and judge their health."""
    statuses, errors = await collect_status(config, queue_names)
    return HealthReport(statuses, [*errors, *find_problems(statuses, max_heartbeat_age_s)])
