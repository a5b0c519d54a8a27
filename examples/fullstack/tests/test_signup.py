"""The example's own tests, written with ``litestar_saq.testing``."""

from __future__ import annotations

import httpx
from litestar import Litestar

from litestar_saq.testing import drain, wait_for_job


async def test_signup_sends_the_welcome_email(app: Litestar, client: httpx.AsyncClient) -> None:
    response = await client.post("/signup", json={"email": "ada@example.com"})
    assert response.status_code == 201

    await drain(app)

    outbox = (await client.get("/outbox")).json()
    assert [mail["to"] for mail in outbox] == ["ada@example.com"]


async def test_job_status_endpoint_reports_the_result(app: Litestar, client: httpx.AsyncClient) -> None:
    key = (await client.post("/signup", json={"email": "grace@example.com"})).json()["key"]

    job = await wait_for_job(app, "default", key)

    assert job.status == "complete"
    assert job.result == {"sent_to": "grace@example.com"}
    assert (await client.get(f"/jobs/{key}")).json()["status"] == "complete"


async def test_unknown_job_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/jobs/nope")
    assert response.status_code == 404
    assert "nope" in response.text


async def test_cleanup_cron_task_runs(app: Litestar, client: httpx.AsyncClient) -> None:
    from litestar_saq import SAQPlugin

    queue = app.plugins.get(SAQPlugin).task_queues.get("default")
    job = await queue.enqueue("cleanup")
    assert job is not None

    finished = await wait_for_job(queue, None, job.key)

    assert finished.status == "complete"
    assert finished.result == {"removed": 0, "queue": "default"}
