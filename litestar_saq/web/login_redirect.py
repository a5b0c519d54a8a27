"""``SAQConfig(web_login_url=...)``: send a browser that is not logged in to the app's login page.

A guard that finds no user raises ``NotAuthorizedException`` (401). For a ``GET`` of one of the
dashboard's HTML pages by a browser (``Accept: text/html``) the answer is then a redirect to
``web_login_url`` with ``next=`` set to the page asked for; API routes, other methods and other errors
(a 403 of a logged-in user, a refused cross-site request) keep their JSON answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from litestar import MediaType, Response
from litestar.exceptions import NotAuthorizedException
from litestar.response import Redirect

from litestar_saq.web.context import api_error_response
from litestar_saq.web.security import SECURITY_HEADERS

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar import Request

__all__ = ("build_error_handler", "login_redirect_url")


def login_redirect_url(login_url: str, next_path: str) -> str:
    """``login_url`` with ``next=<next_path>`` added to its query."""
    return f"{login_url}{'&' if '?' in login_url else '?'}next={quote(next_path, safe='/')}"


def build_error_handler(
    login_url: str | None,
) -> Callable[[Request[Any, Any, Any], Exception], Response[Any]]:
    """The dashboard's exception handler: JSON errors, and with ``login_url`` the login redirect."""
    if login_url is None:
        return api_error_response

    def redirect_to_login(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        if isinstance(exc, NotAuthorizedException) and _is_browser_page_request(request):
            query = request.scope.get("query_string", b"").decode("latin-1")
            next_path = request.url.path + (f"?{query}" if query else "")
            return Redirect(login_redirect_url(login_url, next_path), headers=dict(SECURITY_HEADERS))
        return api_error_response(request, exc)

    return redirect_to_login


def _is_browser_page_request(request: Request[Any, Any, Any]) -> bool:
    if request.method not in ("GET", "HEAD") or "text/html" not in request.headers.get("accept", ""):
        return False
    route_handler = request.scope.get("route_handler")
    return getattr(route_handler, "media_type", None) == MediaType.HTML
