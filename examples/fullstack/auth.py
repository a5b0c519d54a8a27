"""The example's log-in: one admin account, a server-side session, and a guard for private routes.

A session id chosen before log-in (planted by another site, or a shared computer's leftover cookie)
never becomes a logged-in one: logging in moves the session to a new id and deletes the old one.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import MediaType, Request, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware.session.server_side import ServerSideSessionBackend, ServerSideSessionConfig
from litestar.params import QueryParameter, URLEncodedBody
from litestar.response import Redirect
from litestar.types import Message

from examples.fullstack import pages

DASHBOARD_PASSWORD = os.environ.get("DASHBOARD_PASSWORD", "admin")
_RENEW = "example.renew_session"
_NEW_ID = "example.new_session_id"


class RenewingSessionBackend(ServerSideSessionBackend):
    """Server-side sessions that get a new id when ``renew_session`` asked for one."""

    def get_session_id(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str:
        new_id: str | None = connection.scope.get("state", {}).get(_NEW_ID)
        return new_id or super().get_session_id(connection)

    async def store_in_message(
        self, scope_session: Any, message: Message, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> None:
        state = connection.scope.setdefault("state", {})
        if state.pop(_RENEW, False):
            old_id = connection.cookies.get(self.config.key)
            if old_id:
                await self.delete(old_id, store=self.config.get_store_from_app(connection.scope["app"]))
            state[_NEW_ID] = self.generate_session_id()
        await super().store_in_message(scope_session, message, connection)


@dataclass
class RenewingSessionConfig(ServerSideSessionConfig):
    """``ServerSideSessionConfig`` whose sessions move to a new id at log-in."""

    _backend_class = RenewingSessionBackend


def renew_session(request: Request[Any, Any, Any], data: dict[str, Any]) -> None:
    """Start a logged-in session under a new id (the id the client had is deleted)."""
    request.scope.setdefault("state", {})[_RENEW] = True
    request.set_session(data)


def requires_login(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard for the dashboard and the private routes: only a logged-in admin gets through."""
    if connection.session.get("user") != "admin":
        raise NotAuthorizedException("log in at /login first")


@get("/login", media_type=MediaType.HTML)
async def login_page() -> str:
    return pages.LOGIN


@post("/login")
async def login(
    data: URLEncodedBody[dict[str, str]],
    request: Request[Any, Any, Any],
    next_path: Annotated[str, QueryParameter(name="next")] = "/saq/",
) -> Redirect:
    """Log in, then go back to the page the dashboard sent the browser here from (``?next=``)."""
    if not next_path.startswith("/") or next_path.startswith("//"):
        next_path = "/saq/"  # only pages of this app: no open redirect
    if data.get("username") == "admin" and secrets.compare_digest(
        data.get("password", ""), DASHBOARD_PASSWORD
    ):
        renew_session(request, {"user": "admin"})
        return Redirect(next_path)
    return Redirect("/login")
