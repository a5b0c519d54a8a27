"""Log a test client in as the example's admin (``/outbox``, ``/jobs/{key}`` and ``/saq/`` need it)."""

from __future__ import annotations

import httpx


async def log_in(client: httpx.AsyncClient, password: str = "admin") -> httpx.Response:
    """Post the login form; the client keeps the new session cookie."""
    return await client.post("/login", data={"username": "admin", "password": password})
