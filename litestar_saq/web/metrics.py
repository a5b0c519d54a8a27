"""``GET /saq/metrics``: Prometheus text of the queues (from their brokers) and this process's jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar import Response

from litestar_saq.metrics import render_metrics
from litestar_saq.web.context import get_or_head

if TYPE_CHECKING:
    from litestar.handlers import HTTPRouteHandler

    from litestar_saq.web.context import DashboardContext

__all__ = ("build_metrics_handler",)

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def build_metrics_handler(context: DashboardContext, path: str) -> HTTPRouteHandler:
    """Return the handler serving the metrics at ``path`` (``SAQConfig.web_metrics_path``)."""

    @get_or_head(path, name="saq_web_metrics", media_type=PROMETHEUS_TEXT)
    async def metrics() -> Response[bytes]:
        """Scrape the queues' brokers and this process's job metrics."""
        return Response(await render_metrics(context.queues()), media_type=PROMETHEUS_TEXT)

    return metrics
