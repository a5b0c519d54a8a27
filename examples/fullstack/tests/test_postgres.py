"""The example on PostgreSQL: user and welcome email commit together, or not at all."""

from __future__ import annotations

import os
import uuid

from examples.fullstack.app import create_app
from examples.fullstack.tasks import build_report
from examples.fullstack.tests.login import log_in
from litestar_saq import SAQPlugin
from litestar_saq.testing import drain, running_app

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


async def test_signup_commits_user_and_job_in_one_transaction() -> None:
    app = create_app(DATABASE_URL)
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    async with running_app(app) as client:
        await log_in(client)
        queue = app.plugins.get(SAQPlugin).task_queues.get("default")
        assert type(queue).__name__ == "AsyncpgQueue"
        created = await client.post("/signup", json={"email": email})
        assert created.status_code == 201, created.text
        refused = await client.post("/signup", json={"email": email})
        assert refused.status_code == 409  # rolled back: no second user, no second job
        await drain(app)
        sent = [mail["to"] for mail in (await client.get("/outbox")).json()]
        job = await queue.job(created.json()["key"])
    assert sent.count(email) == 1
    assert job is not None
    assert job.status == "complete"


async def test_report_counts_users_through_the_injected_session() -> None:
    app = create_app(DATABASE_URL)
    async with running_app(app) as client:
        await log_in(client)
        signed_up = await client.post("/signup", json={"email": f"{uuid.uuid4().hex[:8]}@x.org"})
        assert signed_up.status_code == 201
        await drain(app)
        users = await app.state.users.count()
        report = await build_report.apply(steps=1, step_s=0)
    assert report["users"] == users >= 1
