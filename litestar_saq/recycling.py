"""Worker recycling: a worker child that ran ``max_jobs_per_worker`` jobs or grew past
``max_memory_per_worker_mb`` stops taking jobs, finishes its running ones and exits with
``EXIT_RECYCLE``; the supervisor starts a fresh child at once.

``RecycleLimits`` counts for one worker. A slot reserves a place before it asks the queue for a job, so
a worker never takes more than ``max_jobs`` jobs however many slots wait at once.
"""

from __future__ import annotations

import logging
import os
import resource
import sys

__all__ = ("EXIT_RECYCLE", "RecycleLimits", "resident_memory_mb")

logger = logging.getLogger("litestar_saq")

EXIT_RECYCLE = 4
"""Exit code of a worker child that reached a recycling limit: restarted at once, without backoff."""

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_memory_mb() -> float:
    """This process's resident memory in MiB (its peak where ``/proc`` is missing, e.g. macOS)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE / 2**20
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB elsewhere


class RecycleLimits:
    """When one worker has done enough: after ``max_jobs`` jobs or above ``max_memory_mb`` of memory.

    Args:
        max_jobs: jobs one worker takes before it is recycled; ``None``: no limit.
        max_memory_mb: resident memory (MiB) of the process above which, checked after every job,
            the worker is recycled; ``None``: no limit.
    """

    def __init__(self, max_jobs: int | None = None, max_memory_mb: float | None = None) -> None:
        self.max_jobs = max_jobs
        self.max_memory_mb = max_memory_mb
        self.jobs_taken = 0
        """Jobs this worker took so far."""
        self.reached: str | None = None
        """Why the worker is to be recycled (for the log), ``None`` while it may go on."""
        self._reserved = 0

    def reserve(self) -> bool:
        """Whether a slot may ask for one more job; if so a place is held for it until ``count()``."""
        if self.reached is not None:
            return False
        if self.max_jobs is not None:
            if self.jobs_taken + self._reserved >= self.max_jobs:
                return False
            self._reserved += 1
        return True

    def count(self, took_job: bool) -> bool:
        """Count the end of a reserved ``process()``; return ``True`` when this made a limit reached."""
        if self.max_jobs is not None:
            self._reserved -= 1
        if not took_job or self.reached is not None:
            return False
        self.jobs_taken += 1
        if self.max_jobs is not None and self.jobs_taken >= self.max_jobs:
            self.reached = f"it took {self.jobs_taken} jobs (max_jobs_per_worker={self.max_jobs})"
        elif self.max_memory_mb is not None:
            memory_mb = resident_memory_mb()
            if memory_mb >= self.max_memory_mb:
                self.reached = (
                    f"it uses {memory_mb:.0f} MiB after {self.jobs_taken} jobs "
                    f"(max_memory_per_worker_mb={self.max_memory_mb:g})"
                )
        return self.reached is not None
