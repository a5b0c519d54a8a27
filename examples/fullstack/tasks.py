"""Background tasks of the example: plain ``async def task(ctx, *, ...)`` functions."""

from __future__ import annotations

import time
from typing import Any

from litestar_saq import TaskContext


async def send_welcome_email(ctx: TaskContext, *, email: str) -> dict[str, Any]:
    """Send the welcome email through the app's own ``Outbox`` (found in ``ctx["state"]``)."""
    outbox = ctx["state"].outbox
    await outbox.send(to=email, subject="Welcome!", body=f"Hello {email}, thanks for signing up.")
    return {"sent_to": email}


async def cleanup(ctx: TaskContext) -> dict[str, Any]:
    """Cron job: forget emails older than an hour."""
    outbox = ctx["state"].outbox
    before = len(outbox.sent)
    cutoff = time.time() - 3600
    outbox.sent[:] = [mail for mail in outbox.sent if float(mail.get("at", time.time())) >= cutoff]
    return {"removed": before - len(outbox.sent), "queue": ctx["queue"].name}
