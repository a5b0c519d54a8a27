"""Give the dashboard API's routing errors (unknown path: 404, wrong method: 405) an ``error`` key.

SAQ's UI shows the ``error`` of a JSON answer and renders a blank page without one, e.g. for a job key
with a ``/``. Litestar raises routing errors before any route of ours is chosen, so neither our guards
nor our exception handler see them; an app-level ``before_send`` hook rewrites them on the way out,
only under ``{web_path}/api/`` and only when no route handler ran (the app's other 404s are untouched).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType

from litestar_saq.web.security import SECURITY_HEADERS

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from litestar.types import Message, Scope

__all__ = ("build_routing_error_hook",)

_MESSAGES = {
    404: "no dashboard API route {method} {path}; job keys with '/' cannot travel in a path: use "
    "GET {root}/api/jobs?key=...",
    405: "{method} is not allowed on {path}; use {allow}",
}
_STATE_KEY = "litestar_saq.routing_error_body"


def build_routing_error_hook(root_path: str) -> Callable[[Message, Scope], Coroutine[Any, Any, None]]:
    """Return the ``before_send`` hook for a dashboard mounted at ``root_path`` (no trailing slash)."""
    api_prefix = root_path + "/api/"

    async def add_error_key(message: Message, scope: Scope) -> None:
        if scope["type"] != ScopeType.HTTP or "route_handler" in scope:
            return
        if message["type"] == "http.response.start":
            path: str = scope.get("path", "")
            headers = MutableScopeHeaders.from_message(message)
            is_json = headers.get("content-type", "").startswith("application/json")
            if message["status"] not in _MESSAGES or not path.startswith(api_prefix) or not is_json:
                return
            error = _MESSAGES[message["status"]].format(
                method=scope.get("method", "GET"), path=path, root=root_path, allow=headers.get("allow", "")
            )
            detail = "Not Found" if message["status"] == 404 else "Method Not Allowed"
            body = msgspec.json.encode({"error": error, "status_code": message["status"], "detail": detail})
            headers["content-length"] = str(len(body))
            for name, value in SECURITY_HEADERS.items():
                headers[name] = value
            scope.setdefault("state", {})[_STATE_KEY] = body
        elif message["type"] == "http.response.body":
            body = scope.get("state", {}).pop(_STATE_KEY, None)
            if body is not None:
                message["body"] = body if scope.get("method") != "HEAD" else b""
                message["more_body"] = False

    return add_error_key
