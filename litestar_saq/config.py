"""What the plugin is told: ``SAQConfig`` for the app, ``QueueConfig`` per queue, ``CronJob`` per schedule.

Everything that can be checked without a broker is checked when these dataclasses are built, and the
error names the queue, the field and the value at fault. ``QueueConfig`` lives in ``queue_config``
and ``CronJob`` in ``cron``; both are importable from here, as in upstream litestar-saq.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from litestar_saq.compat import (
    LegacySAQFields,
    PostgresQueueOptions,
    RedisQueueOptions,
    apply_upstream_saq_fields,
)
from litestar_saq.cron import CronJob
from litestar_saq.dsn import masked_repr, redact
from litestar_saq.exceptions import SAQConfigError
from litestar_saq.extras import prometheus_installed, require_prometheus
from litestar_saq.queue_config import HookSpec, QueueConfig, TaskSpec, reject_duplicates
from litestar_saq.queues import TaskQueues

__all__ = (
    "CronJob",
    "HookSpec",
    "PostgresQueueOptions",
    "QueueConfig",
    "RedisQueueOptions",
    "SAQConfig",
    "TaskQueues",
    "TaskSpec",
)


@dataclass
class SAQConfig(LegacySAQFields):
    """The plugin's configuration: the queues, where their workers run and the web UI."""

    queue_configs: Collection[QueueConfig] = ()
    """The queues to create; each name must be unique."""
    worker_processes: int = 1
    """Default number of child processes per ``separate_process`` queue."""
    use_server_lifespan: bool = False
    """Let ``litestar run`` start and stop the worker processes of ``separate_process`` queues."""
    json_serializer: Callable[[Any], str] | None = None
    """Serialises job payloads; defaults to ``json.dumps``."""
    json_deserializer: Callable[[str | bytes], Any] | None = None
    """Reads job payloads; defaults to ``json.loads``."""
    queues_dependency_key: str = "task_queues"
    """The name under which handlers receive the ``TaskQueues`` registry."""
    web_enabled: bool = False
    """Serve the queue dashboard under ``web_path``."""
    web_path: str = "/saq"
    """Where the dashboard is mounted."""
    web_guards: list[Any] | None = None
    """Litestar guards for every dashboard page and API route."""
    web_include_in_schema: bool = False
    """List the dashboard's routes in the OpenAPI schema."""
    web_trusted_origins: Collection[str] = ()
    """Origins besides the app's own whose pages may send the dashboard's actions (retry, abort), e.g.
    ``["https://ops.example.com"]`` when a proxy rewrites ``Host``; other cross-site ones get 403."""
    web_metrics: bool | None = None
    """Prometheus metrics at ``web_path`` + ``web_metrics_path`` and job metrics in every worker: ``None``
    when the dashboard is on and ``prometheus-client`` is installed, ``True`` always (the extra
    ``litestar-saq[prometheus]`` must be installed), ``False`` never."""
    web_metrics_path: str = "/metrics"
    """Where the metrics are served, under ``web_path`` and behind ``web_guards``."""
    web_login_url: str | None = None
    """Where a browser goes when a guard refuses it a dashboard page as not logged in (401), with
    ``?next=<page>``, e.g. ``"/login"``; ``None``: a JSON 401. API routes always answer JSON."""
    web_live_interval_s: float = 1.0
    """How often the dashboard's live streams read the broker: one reader per queue and per watched job,
    shared by every open page (see "Live dashboard" in the docs)."""
    web_live_heartbeat_s: float = 15.0
    """Seconds between heartbeat comments on an idle live stream, so proxies keep it open."""
    web_live_max_stream_s: float = 300.0
    """Longest a live stream stays open; the browser then reconnects on its own."""
    web_live_max_streams: int = 100
    """Most live streams open at once per app process; one more is answered 503."""
    enable_otel: bool | None = None
    """OpenTelemetry spans: ``None`` when a tracer provider is set up, ``True`` always, ``False`` never."""
    dependencies: Mapping[str, Any] | None = None
    """Providers for the tasks of every queue (``Provide(...)`` or callables); see ``QueueConfig``."""

    def __repr__(self) -> str:
        return masked_repr(self)

    def __post_init__(self) -> None:
        self.queue_configs = list(self.queue_configs)
        for queue_config in self.queue_configs:
            if not isinstance(queue_config, QueueConfig):
                raise SAQConfigError(
                    f"SAQConfig: queue_configs holds {redact(repr(queue_config))}; give "
                    "litestar_saq.QueueConfig objects"
                )
        apply_upstream_saq_fields(self)
        reject_duplicates(
            [queue_config.name for queue_config in self.queue_configs],
            lambda name: SAQConfigError(
                f"SAQConfig: queue name {name!r} is configured twice in queue_configs; queue names must "
                "be unique"
            ),
        )
        if not isinstance(self.worker_processes, int) or self.worker_processes < 1:
            raise SAQConfigError(
                f"SAQConfig: worker_processes={self.worker_processes!r} must be an integer >= 1"
            )
        if not self.web_path.startswith("/"):
            raise SAQConfigError(f"SAQConfig: web_path={self.web_path!r} must start with '/'")
        if self.web_metrics:
            require_prometheus()
        if self.web_login_url is not None and not self.web_login_url.startswith(("/", "https://", "http://")):
            raise SAQConfigError(
                f"SAQConfig: web_login_url={self.web_login_url!r} must be a path ('/login') or an http(s) URL"
            )
        if not self.web_metrics_path.startswith("/"):
            raise SAQConfigError(f"SAQConfig: web_metrics_path={self.web_metrics_path!r} must start with '/'")
        for name in ("web_live_interval_s", "web_live_heartbeat_s", "web_live_max_stream_s"):
            if not isinstance(getattr(self, name), (int, float)) or not getattr(self, name) > 0:
                raise SAQConfigError(f"SAQConfig: {name}={getattr(self, name)!r} must be a number > 0")
        if not isinstance(self.web_live_max_streams, int) or self.web_live_max_streams < 1:
            raise SAQConfigError(
                f"SAQConfig: web_live_max_streams={self.web_live_max_streams!r} must be an integer >= 1"
            )
        if not self.queues_dependency_key.isidentifier():
            raise SAQConfigError(
                f"SAQConfig: queues_dependency_key={self.queues_dependency_key!r} must be a valid "
                "Python identifier (it is a handler parameter name)"
            )

    def get_queue_config(self, name: str) -> QueueConfig:
        """Return the configuration of queue ``name``."""
        for queue_config in self.queue_configs:
            if queue_config.name == name:
                return queue_config
        known = ", ".join(repr(queue_config.name) for queue_config in self.queue_configs) or "none"
        raise SAQConfigError(f"no queue named {name!r} is configured; configured queues: {known}")

    @property
    def metrics_enabled(self) -> bool:
        """Whether workers record job metrics: ``web_metrics``, or if ``prometheus-client`` imports."""
        if self.web_metrics is not None:
            return self.web_metrics
        return prometheus_installed()

    def processes_for(self, queue_config: QueueConfig) -> int:
        """How many worker processes ``queue_config`` gets."""
        return queue_config.worker_processes or self.worker_processes
