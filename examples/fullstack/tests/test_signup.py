"""The example's own tests, written with ``litestar_saq.testing``."""

from __future__ import annotations

import httpx
from litestar import Litestar

from examples.fullstack.tests.login import log_in
from litestar_saq import SAQPlugin
from litestar_saq.testing import drain, wait_for_job


async def test_signup_sends_the_welcome_email(app: Litestar, client: httpx.AsyncClient) -> None:
    await log_in(client)
    response = await client.post("/signup", json={"email": "ada@example.com"})
    assert response.status_code == 201

    await drain(app)

    outbox = (await client.get("/outbox")).json()
    assert [mail["to"] for mail in outbox] == ["ada@example.com"]


async def test_second_signup_is_refused_and_sends_nothing(app: Litestar, client: httpx.AsyncClient) -> None:
    await log_in(client)
    assert (await client.post("/signup", json={"email": "bob@example.com"})).status_code == 201
    again = await client.post("/signup", json={"email": "bob@example.com"})
    assert again.status_code == 409
    await drain(app)
    assert len((await client.get("/outbox")).json()) == 1


async def test_job_status_endpoint_reports_the_result(app: Litestar, client: httpx.AsyncClient) -> None:
    await log_in(client)
    key = (await client.post("/signup", json={"email": "grace@example.com"})).json()["key"]

    job = await wait_for_job(app, "default", key)

    assert job.status == "complete"
    assert job.result == {"sent_to": "grace@example.com"}
    assert (await client.get(f"/jobs/{key}")).json()["status"] == "complete"


async def test_report_reports_progress_then_its_result(app: Litestar, client: httpx.AsyncClient) -> None:
    await log_in(client)
    queue = app.plugins.get(SAQPlugin).task_queues.get("default")
    job = await queue.enqueue("build_report", steps=4, step_s=0.05, heartbeat=2)
    assert job is not None
    seen_progress = set()
    while True:
        status = (await client.get(f"/jobs/{job.key}")).json()
        seen_progress.add(status["progress"])
        if status["status"] == "complete":
            break
    assert status["progress"] == 1.0
    assert status["result"] == {"users": 0, "emails_sent": 0}
    assert len(seen_progress) >= 2  # the page saw it move
    assert "progress" in (await client.get(f"/reports/{job.key}")).text


async def test_unknown_job_is_404(client: httpx.AsyncClient) -> None:
    await log_in(client)
    response = await client.get("/jobs/nope")
    assert response.status_code == 404
    assert "nope" in response.text


async def test_cleanup_cron_task_runs(app: Litestar, client: httpx.AsyncClient) -> None:
    queue = app.plugins.get(SAQPlugin).task_queues.get("default")
    job = await queue.enqueue("cleanup")
    assert job is not None

    finished = await wait_for_job(queue, None, job.key)

    assert finished.status == "complete"
    assert finished.result == {"removed": 0, "queue": "default"}


async def test_dashboard_needs_a_login(client: httpx.AsyncClient) -> None:
    assert (await client.get("/saq/api/queues")).status_code == 401
    wrong = await client.post("/login", data={"username": "admin", "password": "nope"})
    assert wrong.status_code in (301, 302, 303, 307)
    assert (await client.get("/saq/api/queues")).status_code == 401
    await client.post("/login", data={"username": "admin", "password": "admin"})
    queues = (await client.get("/saq/api/queues")).json()["queues"]
    assert [queue["name"] for queue in queues] == ["default"]
