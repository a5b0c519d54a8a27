"""Worker ids that say where a worker runs, so any worker on the same host can tell it has died.

A sweep that finds a running job whose worker process no longer exists on this host takes the job
back at once, instead of waiting for the worker's stats to expire or the job's timeout. A job of a
worker on another host is taken back once that worker's stats expired (:func:`live_process_ids`), and a
worker's late write about a job taken back meanwhile is told apart by :func:`fence_tokens`.
"""

from __future__ import annotations

import os
import socket
import uuid

__all__ = (
    "DEQUEUED_BY",
    "dequeuer_id",
    "fence_tokens",
    "live_process_ids",
    "new_worker_id",
    "worker_died_on_this_host",
    "worker_lives_on_this_host",
)

DEQUEUED_BY = "dequeued"
"""The end of a :func:`dequeuer_id`: the job was dequeued, and its Worker has not yet written its start."""


def _this_host() -> str:
    """This machine and PID namespace: two containers with one hostname still differ."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    return f"{socket.gethostname()}.{namespace}"


def new_worker_id() -> str:
    """A worker id that says where the worker runs, so a sweep on the same host can tell it died."""
    return f"{_this_host()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def dequeuer_id() -> str:
    """The ``worker_id`` a dequeue stores until the Worker's own replaces it: this host and process."""
    return f"{_this_host()}-{os.getpid()}-{DEQUEUED_BY}"


def live_process_ids(worker_ids: set[str]) -> set[str]:
    """``worker_ids`` (workers whose stats are fresh) plus the dequeuer ids of their processes.

    A job dequeued by a live process carries its dequeuer id until the Worker's start write lands; it
    belongs to a live worker as much as the jobs carrying the Worker's own id.
    """
    live = set(worker_ids)
    for worker_id in worker_ids:
        parts = worker_id.rsplit("-", 2)
        if len(parts) == 3 and parts[1].isdigit():
            live.add(f"{parts[0]}-{parts[1]}-{DEQUEUED_BY}")
    return live


def fence_tokens(worker_id: str | None) -> tuple[bytes | None, bytes | None]:
    """What a stored running job must contain for this process's write about it to count.

    A job this process still holds carries either its Worker's id or this process's dequeuer id (the
    start write is held back, see ``asyncpg_starts``). ``(None, None)`` for a job no worker ran.
    """
    if not worker_id:
        return None, None
    return worker_id.encode(), dequeuer_id().encode()


def worker_died_on_this_host(worker_id: str) -> bool:
    """Tell whether ``worker_id`` belongs to a process of this host that no longer exists."""
    return _process_on_this_host(worker_id) is False


def worker_lives_on_this_host(worker_id: str) -> bool:
    """Tell whether ``worker_id`` belongs to a process of this host that still exists."""
    return _process_on_this_host(worker_id) is True


def _process_on_this_host(worker_id: str) -> bool | None:
    """Whether ``worker_id``'s process exists; ``None`` for another host or an id we did not make."""
    parts = worker_id.rsplit("-", 2)
    if len(parts) != 3 or parts[0] != _this_host() or not parts[1].isdigit():
        return None  # only its stats can tell
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True
