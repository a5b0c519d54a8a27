"""Turning the items of ``enqueue_many`` into jobs, exactly as SAQ's ``Queue.enqueue`` prepares one.

An item is a ``Job``, a task name, or a ``(task name, kwargs)`` pair whose kwargs mix job options
(``key``, ``timeout``…) and task arguments, as in ``queue.enqueue(name, **kwargs)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from saq.job import Job, Status
from saq.utils import now

from litestar_saq.backends.job_dicts import new_job_key
from litestar_saq.exceptions import InvalidTypeError, InvalidValueError

if TYPE_CHECKING:
    from saq.queue import Queue

    from litestar_saq.job_options import QueueJobOptions

__all__ = ("EnqueueItem", "job_of_item")

EnqueueItem: TypeAlias = "Job | str | tuple[str, Mapping[str, Any]]"
"""One job for ``enqueue_many``: a ``Job``, a task name, or ``(task name, kwargs)``."""

_JOB_FIELDS = frozenset(Job.__dataclass_fields__)


def job_of_item(queue: Queue, item: EnqueueItem, options: QueueJobOptions | None) -> Job:
    """The queued ``Job`` for ``item`` on ``queue``, with the task's and queue's defaults applied."""
    if isinstance(item, Job):
        job = item
    else:
        function, given = (item, {}) if isinstance(item, str) else item
        if not isinstance(function, str):
            raise InvalidTypeError(
                f"queue {queue.name!r}: enqueue_many takes jobs, task names or (name, kwargs) pairs"
            )
        given = options.for_enqueue(queue.name, function, dict(given)) if options is not None else given
        fields: dict[str, Any] = {}
        task_kwargs: dict[str, Any] = {}
        for name, value in given.items():
            (fields if name in _JOB_FIELDS else task_kwargs)[name] = value
        if task_kwargs:
            fields["kwargs"] = task_kwargs
        if "key" not in fields:
            fields["key"] = new_job_key()  # as `enqueue` by name: SAQ's uuid1 default costs 4x
        job = Job(function=function, **fields)
    if job.queue and job.queue.name != queue.name:
        raise InvalidValueError(f"Job {job} registered to a different queue")
    job.queue = queue
    job.queued = now()
    job.status = Status.QUEUED
    return job
