"""The example's log-in: a new session id at log-in (no fixation), private routes need it."""

from __future__ import annotations

import httpx

from examples.fullstack.tests.login import log_in

PRIVATE = ["/outbox", "/jobs/nope", "/saq/", "/saq/api/queues"]


async def test_private_routes_need_the_login(client: httpx.AsyncClient) -> None:
    for path in PRIVATE:
        assert (await client.get(path)).status_code == 401, path
    await log_in(client)
    assert (await client.get("/outbox")).status_code == 200
    assert (await client.get("/jobs/nope")).status_code == 404
    assert (await client.get("/saq/api/queues")).status_code == 200


async def test_login_issues_a_new_session_id(client: httpx.AsyncClient) -> None:
    planted = "f" * 64  # a session id an attacker chose and got into the victim's browser
    response = await client.post(
        "/login", data={"username": "admin", "password": "admin"}, headers={"Cookie": f"session={planted}"}
    )
    assert response.status_code in (301, 302, 303, 307)
    issued = response.cookies.get("session")
    assert issued and issued not in (planted, "null")
    victim = await client.get("/outbox", headers={"Cookie": f"session={issued}"})
    assert victim.status_code == 200  # the victim is logged in...
    for path in PRIVATE:
        attacker = await client.get(path, headers={"Cookie": f"session={planted}"})
        assert attacker.status_code == 401, path  # ...the attacker, with the id they chose, is not


async def test_logging_in_again_renews_the_id_again(client: httpx.AsyncClient) -> None:
    first = (await log_in(client)).cookies.get("session")
    second = (await log_in(client)).cookies.get("session")
    assert first and second and first != second
    old = await client.get("/outbox", headers={"Cookie": f"session={first}"})
    assert old.status_code == 401  # the old id was deleted
    assert (await client.get("/outbox", headers={"Cookie": f"session={second}"})).status_code == 200


async def test_a_wrong_password_starts_no_session(client: httpx.AsyncClient) -> None:
    await log_in(client, password="nope")
    assert (await client.get("/outbox")).status_code == 401


async def test_the_dashboard_sends_a_browser_to_log_in_and_back(client: httpx.AsyncClient) -> None:
    browser = {"accept": "text/html"}
    to_login = await client.get("/saq/ops", headers=browser)
    assert to_login.status_code in (302, 303, 307)
    assert to_login.headers["location"] == "/login?next=/saq/ops"
    back = await client.post(to_login.headers["location"], data={"username": "admin", "password": "admin"})
    assert back.headers["location"] == "/saq/ops"
    assert (await client.get("/saq/ops", headers=browser)).status_code == 200
    elsewhere = await client.post(
        "/login?next=//evil.example", data={"username": "admin", "password": "admin"}
    )
    assert elsewhere.headers["location"] == "/saq/", "no open redirect"
