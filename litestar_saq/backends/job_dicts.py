"""Cheaper job basics: ``job_to_dict`` (SAQ's ``Job.to_dict``) and ``new_job_key`` (SAQ's default key).

``job_to_dict`` is SAQ's ``Job.to_dict`` without its per-call ``dataclasses.fields()`` walk:
Every write of a job serializes it (enqueue, start, finish); SAQ's ``to_dict`` looks up the dataclass
fields on each call, a third of a serialization. The dict made here is the same, key for key and in
the same order (tests/brokers/test_redis_saq_compat.py compares them), so stored blobs do not change.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from saq.job import Job

__all__ = ("job_to_dict", "new_job_key")

_FIELDS = tuple((field.name, field.default) for field in dataclasses.fields(Job))
"""``(name, default)`` of every ``Job`` field in declaration order (``MISSING`` for a factory default)."""


def new_job_key() -> str:
    """A key for a job enqueued without one: a random UUID, as text.

    SAQ's default is a time-based UUID (``uuid1``), whose clock-sequence call costs four times a
    random one; keys are opaque (nothing orders or parses them), so the format stays a UUID.
    """
    return str(uuid.uuid4())


def job_to_dict(job: Job) -> dict[str, Any]:
    """``job.to_dict()``: fields equal to their default left out, an empty ``meta`` too, the queue by name."""
    if type(job) is not Job:  # a subclass may add fields or its own to_dict
        return job.to_dict()
    result: dict[str, Any] = {}
    for name, default in _FIELDS:
        value = getattr(job, name)
        try:
            if bool(value == default):
                continue
        except ValueError:  # e.g. an array result, whose comparison has no single truth value
            pass
        if name == "meta" and not value:
            continue
        if name == "queue" and value:
            value = value.name
        result[name] = value
    return result
