"""Worker ids that say where a worker runs, so any worker on the same host can tell it has died.

A sweep that finds a running job whose worker process no longer exists on this host takes the job
back at once, instead of waiting for the worker's stats to expire or the job's timeout.
"""

from __future__ import annotations

import os
import socket
import uuid

__all__ = ("DEQUEUED_BY", "dequeuer_id", "new_worker_id", "worker_died_on_this_host")

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
    return new_worker_id().rsplit("-", 1)[0] + "-" + DEQUEUED_BY


def worker_died_on_this_host(worker_id: str) -> bool:
    """Tell whether ``worker_id`` belongs to a process of this host that no longer exists."""
    parts = worker_id.rsplit("-", 2)
    if len(parts) != 3 or parts[0] != _this_host() or not parts[1].isdigit():
        return False  # another host, or an id we did not make: only its stats can tell
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # exists, owned by someone else
    return False
