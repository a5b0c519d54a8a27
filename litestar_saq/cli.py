"""The ``litestar workers`` command group."""

from __future__ import annotations

import click

__all__ = ("build_cli_app",)


def build_cli_app() -> click.Group:
    """Return the ``workers`` group (``run``, ``status``)."""

    @click.group(name="workers", help="Run and inspect SAQ workers.")
    def workers_group() -> None:
        pass

    return workers_group
