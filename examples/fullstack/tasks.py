"""Background tasks of the example: ``@task`` handles whose mail service and database session are injected."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from examples.fullstack.dependencies import UsersSession
from examples.fullstack.services import Outbox
from litestar_saq import TaskContext, injected, monitored_job, task


@task(timeout=30, retries=3)
async def send_welcome_email(ctx: TaskContext, *, email: str, outbox: Outbox = injected()) -> dict[str, Any]:
    """Send the welcome email through the app's mail service (injected)."""
    await outbox.send(to=email, subject="Welcome!", body=f"Hello {email}, thanks for signing up.")
    return {"sent_to": email}


@task(timeout=600, retries=2, heartbeat=5)
@monitored_job()
async def build_report(
    ctx: TaskContext,
    *,
    steps: int = 10,
    step_s: float = 0.5,
    db: UsersSession = injected(),
    outbox: Outbox = injected(),
) -> dict[str, Any]:
    """A long job: heartbeats keep it alive (``monitored_job``), progress shows on the report page."""
    job = ctx["job"]
    for step in range(1, steps + 1):
        await asyncio.sleep(step_s)  # one slice of real work
        await job.update(progress=step / steps)
    return {"users": await db.count(), "emails_sent": len(outbox.sent)}


@task(timeout=60)
async def cleanup(ctx: TaskContext, *, outbox: Outbox = injected()) -> dict[str, Any]:
    """Cron job: forget emails older than an hour."""
    before = len(outbox.sent)
    cutoff = time.time() - 3600
    outbox.sent[:] = [mail for mail in outbox.sent if mail["at"] >= cutoff]
    return {"removed": before - len(outbox.sent), "queue": ctx["queue"].name}
