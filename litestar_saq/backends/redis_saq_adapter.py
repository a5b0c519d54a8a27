"""Everything our ``RedisQueue`` takes from SAQ's ``RedisQueue`` beyond its public API, in one place.

Pinned to the SAQ versions we test: ``saq>=0.26,<0.27`` (see ``pyproject.toml``). When SAQ changes, this
module and ``tests/brokers/test_saq_internals.py`` are what to revisit: the test checks that every name
in :data:`SAQ_INTERNALS` still exists on SAQ's queue with the kind we rely on, and that SAQ still says
:data:`WRONG_QUEUE_ERROR` when it is handed another queue's job.

The Redis key names (``namespace("queued")``, ``"active"``, ``"incomplete"``, ``"sweep"``, ``"stats"``,
``"worker_info:<id>"``) are SAQ's storage format, shared with SAQ's own workers and web UI; we reach
them through SAQ's public ``namespace()``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Literal

from saq.queue.redis import RedisQueue as SAQRedisQueue

if TYPE_CHECKING:
    from saq.job import Job

__all__ = (
    "SAQ_INTERNALS",
    "SAQ_VERSIONS",
    "WRONG_QUEUE_ERROR",
    "close_pubsub",
    "is_wrong_queue_error",
    "job_by_id",
    "operation_slots",
)

SAQ_VERSIONS = ">=0.26,<0.27"
"""The SAQ versions this adapter is written for and tested against."""

SAQ_INTERNALS: dict[str, Literal["coroutine method", "instance attribute"]] = {
    "_pubsub": "instance attribute",  # the queue's PubSubMultiplexer; we close it without the client
    "_get_job_by_id": "coroutine method",  # reads a job under the queue's max_concurrent_ops semaphore
    "_op_sem": "instance attribute",  # the max_concurrent_ops semaphore: bounds connections in use
    "_before_enqueue": "coroutine method",  # runs the register_before_enqueue callbacks (tracing)
    "_dump": "instance attribute",  # the queue's dump function (saq_queue_hooks.dump_job_dict)
}
"""The private members of SAQ's ``RedisQueue`` used below, and what they must be."""

WRONG_QUEUE_ERROR = "fetched by wrong queue"
"""What SAQ's ``Queue.deserialize`` says when a payload belongs to another queue (a ``ValueError``)."""


async def close_pubsub(queue: SAQRedisQueue) -> None:
    """Stop the queue's job-status subscription, leaving its Redis client open."""
    await queue._pubsub.close()


async def job_by_id(queue: SAQRedisQueue, job_id: bytes | str) -> Job | None:
    """Read and decode the job stored under ``job_id`` (a Redis key), as SAQ's dequeue does."""
    return await queue._get_job_by_id(job_id)


def operation_slots(queue: SAQRedisQueue) -> asyncio.Semaphore:
    """The queue's ``max_concurrent_ops`` semaphore, which SAQ holds around its enqueues and reads."""
    return queue._op_sem


def is_wrong_queue_error(exc: BaseException) -> bool:
    """Whether ``exc`` is SAQ refusing a job that belongs to another queue (not an undecodable payload)."""
    return isinstance(exc, ValueError) and WRONG_QUEUE_ERROR in str(exc)
