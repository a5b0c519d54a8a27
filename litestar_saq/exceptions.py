"""Every error litestar-saq raises on purpose: each names what is wrong and what to do about it.

All of them derive from ``LitestarSaqError``, and also from the Litestar or standard type that callers
already catch (``ImproperlyConfiguredException`` for configuration, ``LookupError`` for a missing
queue or task, ``RuntimeError`` for a migration lock that was not granted in time).
"""

from __future__ import annotations

from litestar.exceptions import ImproperlyConfiguredException, LitestarException, MissingDependencyException
from saq.errors import InvalidUrlError

__all__ = (
    "BrokerUnavailableError",
    "DashboardLookupError",
    "InvalidTypeError",
    "InvalidValueError",
    "JobNotFoundError",
    "LitestarSaqError",
    "MigrationLockTimeout",
    "MissingExtraError",
    "QueueNotFoundError",
    "QueueUrlError",
    "SAQConfigError",
    "SchemaTooNewError",
    "TaskDefinitionError",
    "TaskImportError",
    "TaskNotEnqueueableError",
    "UnknownTaskError",
    "UsageError",
    "WaitTimeoutError",
    "WorkersCannotStartError",
)


class LitestarSaqError(Exception):
    """Base of every error that litestar-saq raises on purpose."""


class SAQConfigError(ImproperlyConfiguredException, LitestarSaqError):
    """The plugin's configuration is wrong; the message names the queue, the field and the value."""

    def __str__(self) -> str:
        # ImproperlyConfiguredException renders as "500: <detail>"; a config error is not an HTTP status.
        return self.detail


class TaskImportError(SAQConfigError):
    """A dotted path given for a task, cron function or hook does not import."""


class QueueNotFoundError(SAQConfigError, KeyError):
    """``TaskQueues.get()`` was asked for a queue that is not configured."""


class MissingExtraError(MissingDependencyException, LitestarSaqError):
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


class BrokerUnavailableError(LitestarException, LitestarSaqError):
    """A queue's broker cannot be reached; the message names the queue and the host (never a password)."""

    def __str__(self) -> str:
        return self.detail


class UnknownTaskError(LitestarSaqError, LookupError):
    """A job names a task that its worker does not have."""


class DashboardLookupError(LitestarSaqError, LookupError):
    """The dashboard was asked for a queue or job that does not exist (answered with a 404)."""


class WorkersCannotStartError(LitestarSaqError):
    """The app could not be loaded or started, so no worker ran; the message says why in one line."""


class MigrationLockTimeout(LitestarSaqError, RuntimeError):
    """The tables are older than our schema version and another session keeps the migration lock."""


class TaskNotEnqueueableError(LitestarSaqError, LookupError):
    """A task handle cannot find its queue: no app started the plugin, or no queue (or several) list it."""


class TaskDefinitionError(LitestarSaqError, TypeError):
    """A task, a dependency provider or a job option is declared in a way that cannot work."""


class UsageError(LitestarSaqError, RuntimeError):
    """An API was called where it cannot work: another event loop, a queue not connected, outside a worker."""


class InvalidValueError(LitestarSaqError, ValueError):
    """A value handed to a queue or a setting is not one it accepts; the message names it."""


class WaitTimeoutError(LitestarSaqError, TimeoutError):
    """A testing helper waited for jobs longer than its ``timeout``; the message says what was left."""


class JobNotFoundError(LitestarSaqError, LookupError):
    """No job with the given key exists in the queue."""


class InvalidTypeError(LitestarSaqError, TypeError):
    """A value of the wrong type was handed to a queue; the message says what it takes."""


class QueueUrlError(LitestarSaqError, InvalidUrlError):
    """A queue was given a URL it cannot serve (SAQ's ``InvalidUrlError``)."""


class SchemaTooNewError(LitestarSaqError, RuntimeError):
    """The SAQ tables were migrated by a newer version than this one understands: upgrade litestar-saq."""
