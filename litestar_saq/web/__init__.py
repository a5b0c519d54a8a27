"""The queue dashboard: SAQ's bundled UI served from the installed ``saq``, its JSON API, our additions.

Everything is mounted under ``SAQConfig.web_path`` (default ``/saq``):

- ``/saq/`` and SAQ's client routes ``/saq/queues/{q}`` and ``/saq/queues/{q}/jobs/{key}``: SAQ's UI;
- ``/saq/ops``: our page with failed and aborted jobs (retry one or all shown), find a job by key,
  throughput per minute and the live workers;
- ``/saq/api/...``: the JSON both pages read; ``/saq/health``: ``OK`` when every broker answers;
- ``/saq/static/...``: the assets, the only routes that ``web_guards`` do not protect.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from litestar import Router

from litestar_saq.runtime import is_worker_child
from litestar_saq.web.api import build_api_handlers
from litestar_saq.web.assets import build_static_handler, load_assets
from litestar_saq.web.context import DashboardContext, api_error_response
from litestar_saq.web.ops import build_ops_handlers
from litestar_saq.web.pages import build_page_handlers

if TYPE_CHECKING:
    from litestar_saq.runtime import SAQRuntime

__all__ = ("build_web_router",)

logger = logging.getLogger("litestar_saq.web")


def build_web_router(runtime: SAQRuntime) -> Router:
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
    context = DashboardContext(task_queues=runtime.task_queues, root_path=root_path)
    guarded = Router(
        path="/",
        route_handlers=[
            *build_page_handlers(context),
            *build_api_handlers(context),
            *build_ops_handlers(context),
        ],
        guards=guards,
        exception_handlers={Exception: api_error_response},
        include_in_schema=config.web_include_in_schema,
    )
    return Router(
        path=root_path or "/",
        route_handlers=[
            build_static_handler(load_assets(), include_in_schema=config.web_include_in_schema),
            guarded,
        ],
        include_in_schema=config.web_include_in_schema,
    )
