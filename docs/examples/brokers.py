"""One queue per broker: Redis, PostgreSQL (asyncpg) and memory, by DSN or with your own client."""

from __future__ import annotations

from redis.asyncio import Redis

from litestar_saq import QueueConfig, TaskContext


async def send_welcome_email(ctx: TaskContext, *, email: str) -> str:
    return email


redis_queue = QueueConfig(
    name="emails",
    dsn="redis://localhost:6379/0",
    broker_options={"health_check_interval": 30, "socket_timeout": 5},  # redis.asyncio.from_url options
    tasks=[send_welcome_email],
)

postgres_queue = QueueConfig(
    name="billing",
    dsn="postgresql://app:secret@localhost:5432/app",  # creates SAQ's tables on first connect
    broker_options={"max_size": 20},  # AsyncpgQueue options: pool size, table names…
    tasks=[send_welcome_email],
)

memory_queue = QueueConfig(
    name="local",
    dsn="memory://",  # one process only: needs separate_process=False
    tasks=[send_welcome_email],
    separate_process=False,
)


def queue_on_my_client(redis: Redis) -> QueueConfig:
    """Your own client (or an ``asyncpg.Pool``, or a SAQ ``Queue``): used, never closed, by the plugin."""
    return QueueConfig(name="shared", broker_instance=redis, tasks=[send_welcome_email])
