"""The queue dashboard: SAQ's bundled UI served from the installed ``saq``, its JSON API, our additions.

Everything is mounted under ``SAQConfig.web_path`` (default ``/saq``):

- ``/saq/`` and SAQ's client routes ``/saq/queues/{q}`` and ``/saq/queues/{q}/jobs/{key}``: SAQ's UI;
- ``/saq/ops``: our page with failed and aborted jobs (retry one or all shown), find a job by key,
  throughput per minute and the live workers;
- ``/saq/job?queue=Q&key=K``: our live view of one job;
- ``/saq/api/...``: the JSON both pages read, and the live event streams (``live_feeds.py``);
  ``/saq/health``: JSON, 200 when every queue has a live worker, else 503; ``/saq/metrics``:
  Prometheus metrics (``SAQConfig.web_metrics``);
- ``/saq/static/...``: the assets, the only routes that ``web_guards`` do not protect.

Every state-changing route refuses cross-site requests (``security.py``); pages send a
Content-Security-Policy, every response ``nosniff`` and a ``Referrer-Policy``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from litestar import Router
from litestar.datastructures import ResponseHeader

from litestar_saq.exceptions import SAQConfigError
from litestar_saq.runtime import is_worker_child
from litestar_saq.web.api import build_api_handlers
from litestar_saq.web.assets import build_static_handler, load_assets
from litestar_saq.web.context import DashboardContext
from litestar_saq.web.live import LiveHub, LiveSettings
from litestar_saq.web.live_feeds import build_live_handlers
from litestar_saq.web.login_redirect import build_error_handler
from litestar_saq.web.metrics import build_metrics_handler
from litestar_saq.web.ops import build_ops_handlers
from litestar_saq.web.pages import build_page_handlers
from litestar_saq.web.routing_errors import build_routing_error_hook
from litestar_saq.web.security import SECURITY_HEADERS, build_cross_site_guard

if TYPE_CHECKING:
    from litestar.config.app import AppConfig

    from litestar_saq.runtime import SAQRuntime

__all__ = ("build_web_router", "install_dashboard")

logger = logging.getLogger("litestar_saq.web")


def install_dashboard(app_config: AppConfig, runtime: SAQRuntime) -> None:
    """Mount the dashboard on the app: its router, and the hook that gives API routing errors an ``error``."""
    hub = LiveHub(LiveSettings.from_config(runtime.config))
    app_config.route_handlers.append(build_web_router(runtime, hub))
    app_config.lifespan.append(hub.lifespan)
    app_config.before_send.append(build_routing_error_hook(runtime.config.web_path.rstrip("/")))


def build_web_router(runtime: SAQRuntime, hub: LiveHub | None = None) -> Router:
    """Return the router mounted at ``SAQConfig.web_path``, guarded by ``SAQConfig.web_guards``.

    Called once per app by ``SAQPlugin.on_app_init``; without guards it logs a warning that the
    dashboard, which can retry and abort jobs, is public.
    """
    config = runtime.config
    root_path = config.web_path.rstrip("/")
    guards = list(config.web_guards or [])
    # Worker child processes load the app but serve no HTTP: a warning there would only be noise.
    if not guards and not is_worker_child():
        logger.warning(
            "the SAQ dashboard at %s/ is public: anyone who can reach the app can see job arguments "
            "and results, retry and abort jobs; protect it with SAQConfig(web_guards=[...])",
            root_path,
        )
    try:
        cross_site_guard = build_cross_site_guard(config.web_trusted_origins)
        read_guard = build_cross_site_guard(config.web_trusted_origins, reads_too=True)
    except ValueError as exc:
        raise SAQConfigError(f"SAQConfig: web_trusted_origins: {exc}") from None
    context = DashboardContext(task_queues=runtime.task_queues, root_path=root_path)
    extra_handlers = []
    if config.web_metrics is True or (config.web_metrics is None and config.metrics_enabled):
        extra_handlers.append(build_metrics_handler(context, config.web_metrics_path))
    guarded = Router(
        path="/",
        route_handlers=[
            *build_page_handlers(context),
            *build_api_handlers(context),
            *build_ops_handlers(context),
            *build_live_handlers(context, hub or LiveHub(LiveSettings.from_config(config)), read_guard),
            *extra_handlers,
        ],
        # The cross-site check first: a forged request is refused before any guard looks at its cookies.
        guards=[cross_site_guard, *guards],
        exception_handlers={Exception: build_error_handler(config.web_login_url)},
        include_in_schema=config.web_include_in_schema,
    )
    return Router(
        path=root_path or "/",
        response_headers=[ResponseHeader(name=name, value=value) for name, value in SECURITY_HEADERS.items()],
        route_handlers=[
            build_static_handler(load_assets(), include_in_schema=config.web_include_in_schema),
            guarded,
        ],
        include_in_schema=config.web_include_in_schema,
    )
