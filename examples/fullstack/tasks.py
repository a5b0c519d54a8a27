"""Background tasks of the example: plain ``async def task(ctx, *, ...)`` functions."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from litestar_saq import TaskContext, monitored_job


async def send_welcome_email(ctx: TaskContext, *, email: str) -> dict[str, Any]:
    """Send the welcome email through the app's own ``Outbox`` (found in ``ctx["state"]``)."""
    outbox = ctx["state"].outbox
    await outbox.send(to=email, subject="Welcome!", body=f"Hello {email}, thanks for signing up.")
    return {"sent_to": email}


@monitored_job()
async def build_report(ctx: TaskContext, *, steps: int = 10, step_s: float = 0.5) -> dict[str, Any]:
    """A long job: heartbeats keep it alive (``monitored_job``), progress shows on the report page."""
    job = ctx["job"]
    for step in range(1, steps + 1):
        await asyncio.sleep(step_s)  # one slice of real work
        await job.update(progress=step / steps)
    users = await ctx["state"].users.count()
    return {"users": users, "emails_sent": len(ctx["state"].outbox.sent)}


async def cleanup(ctx: TaskContext) -> dict[str, Any]:
    """Cron job: forget emails older than an hour."""
    outbox = ctx["state"].outbox
    before = len(outbox.sent)
    cutoff = time.time() - 3600
    outbox.sent[:] = [mail for mail in outbox.sent if mail["at"] >= cutoff]
    return {"removed": before - len(outbox.sent), "queue": ctx["queue"].name}
