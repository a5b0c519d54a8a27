"""The queue dashboard: SAQ's bundled UI served from the installed ``saq``, its JSON API, our additions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar import Router

if TYPE_CHECKING:
    from litestar_saq.plugin import SAQPlugin

__all__ = ("build_web_router",)


def build_web_router(plugin: SAQPlugin) -> Router:
    """Return the router mounted at ``SAQConfig.web_path``, guarded by ``SAQConfig.web_guards``."""
    config = plugin.config
    return Router(
        path=config.web_path,
        route_handlers=[],
        guards=list(config.web_guards or []),
        include_in_schema=config.web_include_in_schema,
    )
