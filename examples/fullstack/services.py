"""Application resources that handlers and tasks share through ``app.state``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class Outbox:
    """A stand-in for an email provider: it keeps what it "sent" so the page can show it."""

    sent: list[dict[str, str]] = field(default_factory=list)
    delay_s: float = 0.2

    async def send(self, *, to: str, subject: str, body: str) -> None:
        await asyncio.sleep(self.delay_s)  # the latency of a real provider's API
        self.sent.append({"to": to, "subject": subject, "body": body})
