"""Build the queue a ``QueueConfig`` describes: the backend class for a DSN's scheme, or a queue around a
user's own client.

Backends are imported only when a queue needs them, so an unused extra (asyncpg, psycopg) is never
imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from saq.queue import Queue

from litestar_saq.dsn import (
    ASYNCPG_SCHEMES,
    CLUSTER_REFUSAL,
    MEMORY_SCHEMES,
    PSYCOPG_SCHEMES,
    REDIS_CLUSTER_SCHEMES,
    REDIS_SCHEMES,
    REDIS_SENTINEL_SCHEMES,
    SUPPORTED_SCHEMES,
    describe_broker,
    dsn_scheme,
)
from litestar_saq.exceptions import MissingExtraError, SAQConfigError

if TYPE_CHECKING:
    from litestar_saq.config import QueueConfig, SAQConfig

__all__ = ("queue_from_config", "queue_from_dsn")


def queue_from_dsn(dsn: str, *, name: str, **options: Any) -> Queue:
    """Build the queue class that serves ``dsn``'s scheme; the queue owns its client and closes it.

    Args:
        dsn: ``redis://``, ``rediss://``, ``unix://``, ``redis+sentinel://``, ``postgresql://`` (asyncpg),
            ``postgresql+psycopg://`` (SAQ's own queue) or ``memory://``.
        name: the queue's name.
        **options: passed to the queue class (``dump``, ``load``, broker options…).
    """
    scheme = dsn_scheme(dsn)
    if scheme in REDIS_SCHEMES:
        from litestar_saq.backends.redis import RedisQueue

        return RedisQueue.from_url(dsn, name=name, **options)
    if scheme in REDIS_SENTINEL_SCHEMES:
        from litestar_saq.backends.redis_sentinel import sentinel_queue

        return sentinel_queue(dsn, name, options)
    if scheme in REDIS_CLUSTER_SCHEMES:
        raise SAQConfigError(f"queue {name!r}: dsn={describe_broker(dsn)!r}: {CLUSTER_REFUSAL}")
    if scheme in ASYNCPG_SCHEMES:
        from litestar_saq.backends.asyncpg import AsyncpgQueue

        asyncpg_dsn = dsn.replace("postgresql+asyncpg://", "postgresql://", 1)
        return AsyncpgQueue.from_url(asyncpg_dsn, name=name, **options)
    if scheme in PSYCOPG_SCHEMES:
        return _psycopg_queue(dsn.replace("postgresql+psycopg://", "postgresql://", 1), name, options)
    if scheme in MEMORY_SCHEMES:
        from litestar_saq.backends.memory import MemoryQueue

        options.pop("max_concurrent_ops", None)
        return MemoryQueue(name=name, **options)
    raise SAQConfigError(
        f"queue {name!r}: dsn={describe_broker(dsn)!r} has unsupported scheme {scheme!r}; use one of: "
        + ", ".join(s + "://" for s in SUPPORTED_SCHEMES)
    )


def queue_from_config(queue_config: QueueConfig, config: SAQConfig) -> tuple[Queue, bool]:
    """Build ``queue_config``'s queue; return it and whether the plugin owns (and must close) it."""
    serializers: dict[str, Any] = {}
    if config.json_serializer is not None:
        serializers["dump"] = config.json_serializer
    if config.json_deserializer is not None:
        serializers["load"] = config.json_deserializer
    if queue_config.dsn is not None:
        options = {**serializers, **queue_config.broker_options}
        if dsn_scheme(queue_config.dsn) in REDIS_SCHEMES + REDIS_SENTINEL_SCHEMES + MEMORY_SCHEMES:
            options.setdefault("max_concurrent_ops", queue_config.max_concurrent_ops)
        return queue_from_dsn(queue_config.dsn, name=queue_config.name, **options), True
    instance = queue_config.broker_instance
    if isinstance(instance, Queue):
        if instance.name != queue_config.name:
            raise SAQConfigError(
                f"queue {queue_config.name!r}: broker_instance is a queue named {instance.name!r}; "
                "give the QueueConfig the same name as the queue"
            )
        return instance, False
    return _queue_around_client(instance, queue_config, serializers), True


def _queue_around_client(client: Any, queue_config: QueueConfig, serializers: dict[str, Any]) -> Queue:
    """Wrap a user's broker client in a queue that uses it but never closes it."""
    from redis.asyncio import Redis

    if isinstance(client, Redis):
        from litestar_saq.backends.redis import RedisQueue

        return RedisQueue(
            client,
            name=queue_config.name,
            max_concurrent_ops=queue_config.max_concurrent_ops,
            owns_client=False,
            **serializers,
        )
    if type(client).__name__ == "RedisCluster":
        raise SAQConfigError(f"queue {queue_config.name!r}: broker_instance=RedisCluster: {CLUSTER_REFUSAL}")
    if type(client).__module__.startswith("asyncpg"):
        from litestar_saq.backends.asyncpg import AsyncpgQueue

        return AsyncpgQueue(pool=client, name=queue_config.name, **serializers)
    raise SAQConfigError(
        f"queue {queue_config.name!r}: broker_instance={type(client).__name__} is not supported; give a "
        "redis.asyncio.Redis client, an asyncpg.Pool or a SAQ Queue"
    )


def _psycopg_queue(dsn: str, name: str, options: dict[str, Any]) -> Queue:
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        raise MissingExtraError(
            "psycopg",
            install="psycopg[binary,pool]",
            needed_for=f"queue {name!r} with a postgresql+psycopg:// dsn",
        ) from None
    from saq.queue.postgres import PostgresQueue

    options.pop("max_concurrent_ops", None)
    return PostgresQueue.from_url(dsn, name=name, **options)
