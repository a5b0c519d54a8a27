"""``CronJob``: a task that a queue's workers enqueue on a cron schedule."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from croniter import croniter
from saq.job import CronJob as SAQCronJob

from litestar_saq._imports import callable_name
from litestar_saq.compat import deprecated
from litestar_saq.exceptions import SAQConfigError

__all__ = ("CronJob", "TaskFunction")

TaskFunction = Callable[..., Any]
"""A task function: ``async def task(ctx, **kwargs)`` (or a plain ``def``)."""


@dataclass
class CronJob:
    """A task that the queue's workers enqueue on a cron schedule.

    Exactly one run is enqueued per tick across all workers of the queue (``unique=True``, the default,
    gives every run the key ``cron:<function name>``).
    """

    function: TaskFunction | str
    """The task to run: an ``async def`` function or its dotted path ("app.tasks.cleanup")."""
    cron: str
    """A cron expression, e.g. ``"*/5 * * * *"``; evaluated in the queue's ``cron_tz``."""
    unique: bool = True
    """Enqueue each tick under one key so that many workers enqueue it once."""
    timeout: int | None = None
    """Seconds before a run is cancelled and retried; ``None`` keeps SAQ's default."""
    heartbeat: int | None = None
    """Seconds without a heartbeat after which a run counts as stuck; ``None`` disables the check."""
    retries: int | None = None
    """How many attempts a run gets; ``None`` keeps SAQ's default (1)."""
    ttl: int | None = None
    """Seconds to keep a finished run's result; ``None`` keeps SAQ's default."""
    kwargs: dict[str, Any] | None = None
    """Keyword arguments passed to the task."""
    meta: dict[str, Any] | None = field(default=None, kw_only=True, repr=False)
    """Deprecated (upstream litestar-saq's field, which had no effect either): warns when given."""

    def __post_init__(self) -> None:
        if self.meta:
            deprecated("CronJob(meta=...)", "it has no effect; remove it (give the task data with kwargs)")
        if not isinstance(self.cron, str) or not croniter.is_valid(self.cron):
            raise SAQConfigError(
                f"CronJob({callable_name(self.function)!r}): cron {self.cron!r} is not a valid cron "
                "expression; use five fields 'minute hour day month weekday', e.g. '*/5 * * * *'"
            )
        if not (callable(self.function) or isinstance(self.function, str)):
            raise SAQConfigError(
                f"CronJob: function {self.function!r} is neither a callable nor a dotted path"
            )

    def to_saq(self, function: TaskFunction) -> SAQCronJob[Any]:
        """Build SAQ's ``CronJob`` around the resolved function (SAQ's has the same fields)."""
        saq_fields = [item.name for item in fields(self) if item.name not in ("function", "meta")]
        settings = {name: getattr(self, name) for name in saq_fields}
        return SAQCronJob(function=function, **settings)
