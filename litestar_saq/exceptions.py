"""Errors raised by litestar-saq: each names what is wrong and what to do about it."""

from __future__ import annotations

from litestar.exceptions import ImproperlyConfiguredException, LitestarException, MissingDependencyException

__all__ = (
    "BrokerUnavailableError",
    "MissingExtraError",
    "QueueNotFoundError",
    "SAQConfigError",
    "TaskImportError",
)


class SAQConfigError(ImproperlyConfiguredException):
    """The plugin's configuration is wrong; the message names the queue, the field and the value."""

    def __str__(self) -> str:
        # ImproperlyConfiguredException renders as "500: <detail>"; a config error is not an HTTP status.
        return self.detail


class TaskImportError(SAQConfigError):
    """A dotted path given for a task, cron function or hook does not import."""


class QueueNotFoundError(SAQConfigError, KeyError):
    """``TaskQueues.get()`` was asked for a queue that is not configured."""


class MissingExtraError(MissingDependencyException):
    """An optional dependency is missing; the message names the ``litestar-saq`` extra to install."""

    def __init__(self, package: str, *, install: str, needed_for: str) -> None:
        LitestarException.__init__(
            self,
            detail=(
                f"{needed_for} needs the package {package!r}, which is not installed. "
                f"Install it with: pip install '{install}'"
            ),
        )

    def __str__(self) -> str:
        return self.detail


class BrokerUnavailableError(LitestarException):
    """A queue's broker cannot be reached; the message names the queue and the host (never a password)."""

    def __str__(self) -> str:
        return self.detail
