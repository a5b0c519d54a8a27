"""The SAQ base-queue internals we use beyond its public API: before-enqueue callbacks, the job dumper.

Pinned to the SAQ versions we test (``saq>=0.26,<0.27``, see ``redis_saq_adapter.SAQ_INTERNALS`` and
``tests/brokers/test_saq_internals.py``). It lives apart from the Redis adapter so that enqueueing on any
backend never imports the Redis client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from saq.job import Job
    from saq.queue import Queue

__all__ = ("dump_job_dict", "run_before_enqueue")


async def run_before_enqueue(queue: Queue, job: Job) -> None:
    """Run the queue's ``register_before_enqueue`` callbacks on ``job``, as SAQ's ``enqueue`` does."""
    await queue._before_enqueue(job)


def dump_job_dict(queue: Queue, job_dict: dict[str, Any]) -> bytes | str:
    """Serialize a job's dict with the queue's ``dump`` (what SAQ's ``Queue.serialize`` applies)."""
    return queue._dump(job_dict)
