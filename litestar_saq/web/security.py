"""What keeps other sites out of the dashboard: the cross-site request check and the security headers.

A logged-in browser sends its cookies with any request, including one that a page of another site (or
of the same site on another port) makes it send: a form that posts to ``/saq/api/.../retry``, a
``no-cors`` fetch. ``refuse_cross_site_requests`` refuses every state-changing request that a browser
marks as coming from elsewhere, and lets through requests that carry no browser marks at all (``curl``,
scripts), which cannot ride on a victim's cookies. It needs no token, so it holds with and without the
app's ``CSRFConfig``; with one, both checks apply.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from litestar.exceptions import HTTPException, PermissionDeniedException

from litestar_saq.exceptions import InvalidValueError

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection
    from litestar.handlers import BaseRouteHandler

__all__ = (
    "PAGE_HEADERS",
    "SECURITY_HEADERS",
    "Guard",
    "build_cross_site_guard",
    "normalise_origin",
)

Guard = Callable[["ASGIConnection[Any, Any, Any, Any]", "BaseRouteHandler"], None]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_CONTENT_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})
"""What an HTML form (or a ``no-cors`` fetch) can send to another origin without asking it first."""

SECURITY_HEADERS = MappingProxyType({"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"})
"""Sent with every dashboard response: assets, JSON and errors included."""

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'self'"
)
"""No inline script, nothing from other origins, and only the app itself may frame the pages."""

PAGE_HEADERS = MappingProxyType(
    {**SECURITY_HEADERS, "Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Frame-Options": "SAMEORIGIN"}
)
"""Sent with the HTML pages: SAQ's UI shell and our operations page."""


def normalise_origin(origin: str) -> str:
    """Return ``origin`` as ``host[:port]`` in lower case, the part of an origin the check compares.

    Raises:
        ValueError: ``origin`` is no ``scheme://host[:port]`` URL (a clear message for the config).
    """
    parts = urlsplit(origin.strip())
    if not parts.scheme or not parts.netloc or parts.path not in ("", "/") or parts.query:
        raise InvalidValueError(
            f"{origin!r} is no origin; write it as scheme://host[:port], e.g. https://ops.example.com"
        )
    return parts.netloc.lower()


def build_cross_site_guard(trusted_origins: Collection[str] = (), *, reads_too: bool = False) -> Guard:
    """Return the guard that refuses state-changing dashboard requests coming from another site.

    Args:
        trusted_origins: origins besides the app's own (``https://admin.example.com``) whose pages may
            post to the dashboard; e.g. when a proxy rewrites the ``Host`` header.
        reads_too: refuse cross-site ``GET`` requests as well: the live event streams, which another
            site could not read but could open by the hundred on a logged-in user's cookies.
    """
    trusted = frozenset(normalise_origin(origin) for origin in trusted_origins)

    def refuse_cross_site_requests(
        connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
    ) -> None:
        """Refuse (403) an unsafe request that a browser says comes from another origin."""
        if connection.scope.get("method", "GET") in SAFE_METHODS and not reads_too:
            return
        headers = connection.headers
        own_host = headers.get("host", "").lower()
        origin = headers.get("origin")
        source = _host_of(origin) if origin is not None else _host_of(headers.get("referer"))
        fetch_site = headers.get("sec-fetch-site", "").lower()
        if fetch_site in ("cross-site", "same-site") and source not in trusted:
            raise PermissionDeniedException(
                f"cross-site request refused: the browser says it comes from another site "
                f"(Sec-Fetch-Site: {fetch_site}, origin {origin or 'unknown'}); dashboard actions must be "
                "sent from the dashboard's own pages"
            )
        foreign = source is not None and (not source or source not in {own_host, *trusted})
        if fetch_site not in ("same-origin", "none") and foreign:
            raise PermissionDeniedException(
                f"cross-site request refused: it comes from {origin or headers.get('referer')!s}, not "
                f"from this app ({own_host or 'no Host header'}); add that origin to "
                "SAQConfig.web_trusted_origins if it is yours"
            )
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type in FORM_CONTENT_TYPES:
            raise HTTPException(
                status_code=415,
                detail=f"dashboard actions take a JSON body (Content-Type: application/json) or none, "
                f"not {content_type}",
            )

    return refuse_cross_site_requests


def _host_of(url: str | None) -> str | None:
    """``host[:port]`` of an ``Origin`` or ``Referer``; ``""`` for ``null`` or garbage (never trusted)."""
    if url is None:
        return None
    try:
        return urlsplit(url.strip()).netloc.lower()
    except ValueError:
        return ""
