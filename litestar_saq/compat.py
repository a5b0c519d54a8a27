"""Code written for upstream litestar-saq (0.8) keeps working: its extra names, and its configuration
fields that have gone, accepted with a ``DeprecationWarning`` that says what to use now.

``QueueConfig`` and ``SAQConfig`` inherit the gone fields from the two dataclasses below (keyword-only, so
the positional order of the current fields does not change) and call ``apply_upstream_queue_fields`` or
``apply_upstream_saq_fields`` from their ``__post_init__``. A gone field is never ignored silently: it is
mapped onto the current fields with a warning, or fails with a ``SAQConfigError`` naming its replacement.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from saq.job import Job, Status
from saq.queue import Queue
from saq.types import Context, QueueInfo, WorkerInfo, WorkerStats
from saq.worker import Worker

from litestar_saq.dsn import ASYNCPG_SCHEMES, MEMORY_SCHEMES, PSYCOPG_SCHEMES, REDIS_SCHEMES, dsn_scheme
from litestar_saq.exceptions import SAQConfigError

if TYPE_CHECKING:
    from litestar_saq.config import QueueConfig, SAQConfig

__all__ = (
    "OPENTELEMETRY_INSTALLED",
    "Job",
    "LegacyQueueFields",
    "LegacySAQFields",
    "PostgresQueueOptions",
    "RedisQueueOptions",
    "Worker",
    "apply_upstream_queue_fields",
    "apply_upstream_saq_fields",
    "saq_signature_namespace",
)

OPENTELEMETRY_INSTALLED: bool = find_spec("opentelemetry") is not None
"""Whether ``opentelemetry`` can be imported (the ``otel`` extra)."""


def saq_signature_namespace() -> dict[str, Any]:
    """SAQ's public types by name, for handlers that use them under ``from __future__ import annotations``.

    The plugin adds them to the app's signature namespace (names the app already defines win).
    """
    return {
        "Context": Context,
        "Job": Job,
        "Queue": Queue,
        "QueueInfo": QueueInfo,
        "Status": Status,
        "Worker": Worker,
        "WorkerInfo": WorkerInfo,
        "WorkerStats": WorkerStats,
    }


class RedisQueueOptions(TypedDict, total=False):
    """``QueueConfig.broker_options`` of a Redis queue (the other keys go to ``redis.asyncio.from_url``)."""

    max_concurrent_ops: int
    """Broker operations one queue object runs at once (also ``QueueConfig.max_concurrent_ops``)."""
    swept_error_message: str
    """The error recorded on a job that the sweep finds stuck."""
    operation_timeout: float
    """Seconds an enqueue may take before it fails with ``BrokerUnavailableError``."""
    orphan_grace_s: float
    """Seconds a job must look orphaned (its worker dead) before it is taken back."""


class PostgresQueueOptions(TypedDict, total=False):
    """``QueueConfig.broker_options`` of a PostgreSQL queue: the ``AsyncpgQueue`` arguments."""

    versions_table: str
    jobs_table: str
    stats_table: str
    min_size: int
    """Smallest size of the asyncpg pool the queue creates."""
    max_size: int
    """Largest size of the asyncpg pool the queue creates."""
    saq_lock_keyspace: int
    priorities: tuple[int, int]
    swept_error_message: str
    manage_pool_lifecycle: bool
    fallback_poll_interval: float
    connect_timeout: float
    migration_timeout: float
    pool_options: dict[str, Any]
    """More ``asyncpg.create_pool`` arguments (e.g. ``max_inactive_connection_lifetime``)."""
    orphan_grace_s: float
    """Seconds a running job's worker must have had no fresh stats before the sweep takes the job back."""


@dataclass
class LegacyQueueFields:
    """``QueueConfig`` fields of upstream litestar-saq that have gone (deprecated, keyword-only)."""

    id: str | None = field(default=None, kw_only=True, repr=False)
    """Deprecated: every worker gets its own id; the value is kept in ``metadata["id"]``."""
    broker_instance_options: Mapping[str, Any] | None = field(default=None, kw_only=True, repr=False)
    """Deprecated: client options go in ``broker_options``."""
    multiprocessing_mode: str | None = field(default=None, kw_only=True, repr=False)
    """Deprecated, no effect (it had none upstream): ``separate_process`` says where workers run."""


@dataclass
class LegacySAQFields:
    """``SAQConfig`` fields of upstream litestar-saq that have gone (deprecated, keyword-only)."""

    queue_instances: Mapping[str, Queue] | None = field(default=None, kw_only=True, repr=False)
    """Deprecated: give each queue to its ``QueueConfig`` as ``broker_instance``."""
    static_files: Path | str | None = field(default=None, kw_only=True, repr=False)
    """Deprecated, no effect: the dashboard serves the installed SAQ's own assets."""
    otel_tracer_name: str | None = field(default=None, kw_only=True, repr=False)
    """Deprecated, no effect: spans come from the tracer ``litestar_saq``."""


# psycopg_pool.AsyncConnectionPool options with an asyncpg counterpart: (broker_options key, pool option).
_PSYCOPG_POOL_OPTIONS = {
    "min_size": ("min_size", None),
    "max_size": ("max_size", None),
    "max_idle": ("pool_options", "max_inactive_connection_lifetime"),
}


def deprecated(old: str, new: str) -> None:
    """Warn, from the user's ``QueueConfig(...)``/``SAQConfig(...)`` line, that ``old`` is deprecated."""
    warnings.warn(
        f"{old} is deprecated (upstream litestar-saq): {new}", DeprecationWarning, stacklevel=_caller_level()
    )


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside this package and dataclasses' generated ``__init__``."""
    package_dir = str(Path(__file__).parent)
    frame, level = inspect.currentframe(), 1
    while frame is not None and (
        frame.f_code.co_filename.startswith(package_dir) or frame.f_code.co_filename.startswith("<")
    ):
        frame, level = frame.f_back, level + 1
    return level - 1


def apply_upstream_queue_fields(queue_config: QueueConfig) -> None:
    """Map upstream's ``QueueConfig`` fields and defaults onto the current fields, warning for gone ones."""
    # Upstream's None for these two means "SAQ's default", which is ours.
    if queue_config.cancellation_hard_deadline_s is None:
        queue_config.cancellation_hard_deadline_s = 1.0
    if queue_config.poll_interval is None:
        queue_config.poll_interval = 0.0
    if queue_config.id is not None:
        deprecated(
            f"QueueConfig(name={queue_config.name!r}, id=...)",
            "each worker now gets its own id; the value is kept as metadata['id'], use metadata",
        )
        queue_config.metadata = {"id": queue_config.id, **(queue_config.metadata or {})}
        queue_config.id = None
    if queue_config.multiprocessing_mode is not None:
        deprecated(
            f"QueueConfig(name={queue_config.name!r}, multiprocessing_mode=...)",
            "it has no effect; remove it (separate_process and worker_processes say where workers run)",
        )
        queue_config.multiprocessing_mode = None
    if queue_config.broker_instance_options is not None:
        options, queue_config.broker_instance_options = queue_config.broker_instance_options, None
        queue_config.broker_options = {
            **_client_options(queue_config, options),
            **queue_config.broker_options,
        }


def _client_options(queue_config: QueueConfig, options: Mapping[str, Any]) -> dict[str, Any]:
    """Upstream's ``broker_instance_options`` as ``broker_options``; an option without a meaning fails."""
    where = f"QueueConfig(name={queue_config.name!r}, broker_instance_options=...)"
    if queue_config.dsn is None:
        deprecated(where, "it has no effect with broker_instance; configure the client you give instead")
        return {}
    scheme = dsn_scheme(queue_config.dsn)
    if scheme in REDIS_SCHEMES:
        deprecated(where, "put redis client options in broker_options")
        return dict(options)
    if scheme in MEMORY_SCHEMES or scheme not in ASYNCPG_SCHEMES + PSYCOPG_SCHEMES:
        raise SAQConfigError(
            f"queue {queue_config.name!r}: broker_instance_options has no meaning for {scheme}://"
        )
    deprecated(where, "pool options go in broker_options (min_size, max_size, pool_options={...})")
    mapped: dict[str, Any] = {}
    for option, value in options.items():
        target = _PSYCOPG_POOL_OPTIONS.get(option)
        if target is None or (target[1] is not None and scheme in PSYCOPG_SCHEMES):
            raise SAQConfigError(
                f"queue {queue_config.name!r}: broker_instance_options[{option!r}] is a psycopg pool option "
                "with no meaning on this queue (PostgreSQL runs on asyncpg); give asyncpg.create_pool "
                "options as broker_options={'pool_options': {...}}, or min_size/max_size in broker_options"
            )
        key, pool_option = target
        if pool_option is None:
            mapped[key] = value
        else:
            mapped.setdefault(key, {})[pool_option] = value
    return mapped


def apply_upstream_saq_fields(config: SAQConfig) -> None:
    """Map upstream's ``SAQConfig`` fields onto the current ones, warning for gone ones."""
    if config.static_files is not None:
        deprecated("SAQConfig(static_files=...)", "it has no effect: the dashboard serves SAQ's own assets")
        config.static_files = None
    if config.otel_tracer_name is not None:
        deprecated(
            "SAQConfig(otel_tracer_name=...)",
            "it has no effect: spans come from the tracer 'litestar_saq' of the global tracer provider",
        )
        config.otel_tracer_name = None
    if config.queue_instances is not None:
        instances, config.queue_instances = config.queue_instances, None
        deprecated(
            "SAQConfig(queue_instances=...)",
            "give each queue to its QueueConfig as broker_instance=queue (it is connected and closed by "
            "you, not the plugin)",
        )
        by_name = {queue_config.name: queue_config for queue_config in config.queue_configs}
        for name, queue in instances.items():
            if name not in by_name:
                raise SAQConfigError(
                    f"SAQConfig: queue_instances has a queue {name!r} but no QueueConfig of that name; "
                    "add QueueConfig(name=..., broker_instance=queue)"
                )
            by_name[name].dsn, by_name[name].broker_instance = None, queue
