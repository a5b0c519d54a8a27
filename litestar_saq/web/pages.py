"""HTML pages: SAQ's single-page UI (its client routes), our operations page and our live job view."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from litestar import MediaType, Request, Response
from litestar.response import Redirect

from litestar_saq.web.context import get_or_head
from litestar_saq.web.security import PAGE_HEADERS

if TYPE_CHECKING:
    from litestar.config.csrf import CSRFConfig
    from litestar.handlers import HTTPRouteHandler

    from litestar_saq.web.context import DashboardContext

__all__ = ("build_page_handlers", "render_dashboard_page", "render_job_page", "render_ops_page")

# SAQ's app.js reads the global ``root_path`` (root-path.js sets it from its data-root: the pages run no
# inline script, so a Content-Security-Policy can forbid it) and renders into #app; the bar above #app
# is ours and survives app.js's re-renders because snabbdom only patches #app.
_PAGE_HEAD = """<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{title}</title>
    <link rel="stylesheet" href="{root}/static/pico.min.css">
    <link rel="stylesheet" href="{root}/static/litestar-saq/dashboard.css">
    {csrf}
  </head>
"""
"""What both pages have in their ``<head>``; ``{title}`` is filled in when a page is defined."""

_DASHBOARD_PAGE = (
    _PAGE_HEAD.replace("{title}", "Queues")
    + """  <body>
    <div class="lsaq-bar container">
      <a href="{root}/ops" data-lsaq="ops-link">Failed jobs, throughput, workers, find a job &rarr;</a>
    </div>
    <div id="app"></div>
    <script src="{root}/static/litestar-saq/root-path.js" data-root="{root}"></script>
    <script src="{root}/static/snabbdom.js"></script>
    <script src="{root}/static/app.js"></script>
    <script src="{root}/static/litestar-saq/dashboard.js"></script>
  </body>
</html>
"""
)


def _own_page(title: str, nav: str, main_id: str, script: str) -> str:
    """One of our pages: a nav bar, an empty ``<main>`` that ``script`` fills, and the shared live.js."""
    return _PAGE_HEAD.replace("{title}", title) + (
        f"""  <body>
    <nav class="container">
      <ul><li><a href="{{root}}/"><strong>SAQ</strong></a></li>{nav}</ul>
    </nav>
    <main class="container" id="{main_id}" data-root="{{root}}">
      <noscript>This page needs JavaScript.</noscript>
    </main>
    <script src="{{root}}/static/litestar-saq/live.js"></script>
    <script src="{{root}}/static/litestar-saq/{script}"></script>
  </body>
</html>
"""
    )


_OPS_PAGE = _own_page("Queue operations", "<li>Operations</li>", "ops", "ops.js")
_JOB_PAGE = _own_page("Job", '<li><a href="{root}/ops">Operations</a></li><li>Job</li>', "lsaq-job", "job.js")


def csrf_meta(csrf_config: CSRFConfig | None) -> str:
    """Return ``<meta>`` tags naming the app's CSRF cookie and header, so our scripts can send it."""
    if csrf_config is None:
        return ""
    return (
        f'<meta name="lsaq-csrf-cookie" content="{html.escape(csrf_config.cookie_name)}">'
        f'<meta name="lsaq-csrf-header" content="{html.escape(csrf_config.header_name)}">'
    )


def render_dashboard_page(root_path: str, csrf_config: CSRFConfig | None = None) -> str:
    """Return SAQ's UI page for a dashboard mounted at ``root_path`` (no trailing slash)."""
    return _DASHBOARD_PAGE.format(root=html.escape(root_path), csrf=csrf_meta(csrf_config))


def render_ops_page(root_path: str, csrf_config: CSRFConfig | None = None) -> str:
    """Return the operations page (failed jobs, throughput, workers, find a job)."""
    return _OPS_PAGE.format(root=html.escape(root_path), csrf=csrf_meta(csrf_config))


def render_job_page(root_path: str, csrf_config: CSRFConfig | None = None) -> str:
    """Return the live view of one job; its script reads the queue and key from the query string."""
    return _JOB_PAGE.format(root=html.escape(root_path), csrf=csrf_meta(csrf_config))


def build_page_handlers(context: DashboardContext) -> list[HTTPRouteHandler]:
    """Return the handlers of the HTML pages, SAQ's client routes included."""
    root_path = context.root_path

    def page(body: str) -> Response[str]:
        return Response(body, media_type=MediaType.HTML, headers=dict(PAGE_HEADERS))

    @get_or_head("/", name="saq_web_home", media_type=MediaType.HTML, sync_to_thread=False)
    def home(request: Request[Any, Any, Any]) -> Response[Any]:
        """Render the queue list; redirect ``/saq`` to ``/saq/``, the only root SAQ's UI recognises."""
        # Litestar routes "/saq" and "/saq/" alike and strips the slash from scope["path"]; only the
        # raw path tells them apart (a server that omits it gets the page, minus the redirect).
        raw_path: bytes = request.scope.get("raw_path") or b"/"
        if not raw_path.endswith(b"/"):
            # Relative, so a prefix that a proxy adds in front of the app is kept.
            last_segment = raw_path.rsplit(b"/", 1)[-1].decode("latin-1")
            query = request.scope.get("query_string", b"").decode("latin-1")
            redirect = last_segment + "/" + (f"?{query}" if query else "")
            return Redirect(redirect, status_code=307, headers=dict(PAGE_HEADERS))
        return page(render_dashboard_page(root_path, request.app.csrf_config))

    @get_or_head(
        ["/queues/{queue_name:str}", "/queues/{queue_name:str}/jobs/{job_key:str}"],
        name="saq_web_client_route",
        media_type=MediaType.HTML,
        sync_to_thread=False,
    )
    def client_route(request: Request[Any, Any, Any]) -> Response[str]:
        """Render the same page for SAQ's client-side routes, so a reload or a shared link works."""
        return page(render_dashboard_page(root_path, request.app.csrf_config))

    @get_or_head("/ops", name="saq_web_ops", media_type=MediaType.HTML, sync_to_thread=False)
    def ops(request: Request[Any, Any, Any]) -> Response[str]:
        """Render the operations page."""
        return page(render_ops_page(root_path, request.app.csrf_config))

    @get_or_head("/job", name="saq_web_live_job_page", media_type=MediaType.HTML, sync_to_thread=False)
    def job_page(request: Request[Any, Any, Any]) -> Response[str]:
        """Render the live view of the job ``?queue=Q&key=K`` (any key, ``/`` and ``#`` included)."""
        return page(render_job_page(root_path, request.app.csrf_config))

    return [home, client_route, ops, job_page]
