"""Redis behind Sentinel: the ``redis+sentinel://`` DSN and a queue that follows the primary.

``redis+sentinel://[user:password@]host:26379,host2:26379/<service>/<db>[?sentinel_password=…]`` asks
the sentinels for the service's primary and follows it through a failover (redis-py's
``SentinelConnectionPool``). A ``rediss+sentinel://`` DSN talks TLS to the primary.
"""

from __future__ import annotations

import inspect
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from saq.queue.redis import RedisQueue as SaqRedisQueue

from litestar_saq.backends.redis import RedisQueue
from litestar_saq.dsn import describe_broker
from litestar_saq.exceptions import InvalidValueError, SAQConfigError

__all__ = ("SentinelAddress", "SentinelRedisQueue", "parse_sentinel_dsn", "sentinel_queue")


class SentinelAddress:
    """What a ``redis+sentinel://`` DSN says: the sentinels, the service, the db and the credentials."""

    def __init__(self, dsn: str) -> None:
        parts = urlsplit(dsn)
        userinfo, _, hosts = parts.netloc.rpartition("@")
        username, _, password = userinfo.partition(":")
        self.username = unquote(username) or None
        self.password = unquote(password) or None
        self.sentinels = [_host_port(host) for host in hosts.split(",") if host]
        path = [segment for segment in parts.path.split("/") if segment]
        if not self.sentinels or not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
            raise InvalidValueError("expected redis+sentinel://host:port[,host:port…]/<service>[/<db>]")
        self.service = unquote(path[0])
        self.db = int(path[1]) if len(path) == 2 else 0
        self.ssl = parts.scheme.lower().startswith("rediss")
        self.options = dict(parse_qsl(parts.query))


def parse_sentinel_dsn(dsn: str, queue_name: str) -> SentinelAddress:
    """Read a ``redis+sentinel://`` DSN; a malformed one fails naming the queue (never the password)."""
    try:
        return SentinelAddress(dsn)
    except ValueError as exc:
        raise SAQConfigError(f"queue {queue_name!r}: dsn={describe_broker(dsn)!r}: {exc}") from None


def _host_port(host: str) -> tuple[str, int]:
    name, _, port = host.rpartition(":")
    if not name:
        return host, 26379
    if not port.isdigit():
        raise InvalidValueError(f"sentinel address {host!r} has no numeric port")
    return name.strip("[]"), int(port)


class SentinelRedisQueue(RedisQueue):
    """A ``RedisQueue`` on a Sentinel-managed primary that also closes its connections to the sentinels."""

    def __init__(self, sentinel: Sentinel, redis: Any, **kwargs: Any) -> None:
        super().__init__(redis, **kwargs)
        self.sentinel = sentinel

    async def disconnect(self) -> None:
        """Disconnect as ``RedisQueue`` does, then close the clients that asked the sentinels."""
        await super().disconnect()
        if self.owns_client:
            for client in self.sentinel.sentinels:
                await client.aclose()


def sentinel_queue(dsn: str, name: str, options: dict[str, Any]) -> RedisQueue:
    """A ``RedisQueue`` on the primary the DSN's sentinels name; it owns (and closes) its client.

    ``options`` holds queue options (``dump``, ``max_concurrent_ops``…) and client options
    (``socket_timeout``, ``health_check_interval``…); ``sentinel_password`` in the DSN's query (or
    ``sentinel_kwargs`` in the options) configures the connections to the sentinels.
    """
    address = parse_sentinel_dsn(dsn, name)
    queue_names = set(inspect.signature(RedisQueue.__init__).parameters)
    queue_names |= set(inspect.signature(SaqRedisQueue.__init__).parameters)
    queue_options = {key: options.pop(key) for key in list(options) if key in queue_names - {"redis"}}
    sentinel_kwargs = options.pop("sentinel_kwargs", None) or {
        key: value for key, value in options.items() if key.startswith("socket_")
    }
    if "sentinel_password" in address.options:
        sentinel_kwargs = {**sentinel_kwargs, "password": address.options["sentinel_password"]}
    # A failover closes every connection to the old primary: retry quickly while the new one is found.
    options.setdefault("retry", Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=6))
    sentinel = Sentinel(address.sentinels, sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
    client = sentinel.master_for(
        address.service,
        db=address.db,
        username=address.username,
        password=address.password,
        ssl=address.ssl,
        **options,
    )
    return SentinelRedisQueue(sentinel, client, owns_client=True, name=name, **queue_options)
