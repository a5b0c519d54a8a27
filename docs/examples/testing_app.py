"""Tests of an app that enqueues jobs, written with ``litestar_saq.testing``.

``first_app`` is configured like production (here memory://; Redis or PostgreSQL in your app):
``in_memory_queues`` moves every queue to memory:// with in-process workers for the test.
"""

from __future__ import annotations

from collections.abc import Callable

from litestar import Litestar

from docs.examples.first_app import app
from litestar_saq.testing import drain, in_memory_queues, running_app, wait_for_job


async def test_signup_sends_the_welcome_email() -> None:
    with in_memory_queues(app):  # before the app starts: no broker needed
        async with running_app(app) as client:  # lifespan, queues, workers, and an httpx client
            response = await client.post("/signup", json={"email": "ada@example.com"})
            assert response.status_code == 201

            await drain(app)  # every queued job has run

            assert app.state.sent == ["ada@example.com"]


async def test_the_job_result(saq_in_memory: Callable[[Litestar], None]) -> None:
    saq_in_memory(app)  # the fixture: same swap, undone after the test
    async with running_app(app) as client:
        key = (await client.post("/signup", json={"email": "grace@example.com"})).json()["key"]

        job = await wait_for_job(app, "default", key)  # complete, failed or aborted

        assert job.status == "complete"
        assert job.result == "welcomed grace@example.com"
