"""``describe_broker`` says where a broker is and never shows a password."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from litestar_saq.dsn import describe_broker, dsn_scheme


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("redis://:s3cret@127.0.0.1:6379/2", "redis://:***@127.0.0.1:6379/2"),
        ("rediss://user:s3cret@cache.example:6380/0", "rediss://user:***@cache.example:6380/0"),
        ("postgresql://app:s3cret@db:5432/jobs", "postgresql://app:***@db:5432/jobs"),
        ("postgresql://app@db/jobs", "postgresql://app@db/jobs"),
        ("postgresql://u:s3cret@h1:5432,h2:5433/db", "postgresql://u:***@h1:5432,h2:5433/db"),
        (
            "postgresql://u@h1,h2/db?target_session_attrs=read-write",
            "postgresql://u@h1,h2/db?target_session_attrs=read-write",
        ),
        (
            "redis://localhost/0?password=s3cret&socket_timeout=5",
            "redis://localhost/0?password=***&socket_timeout=5",
        ),
        (
            "postgresql:///jobs?host=/var/run/postgresql&PASSWORD=s3cret",
            "postgresql:///jobs?host=/var/run/postgresql&PASSWORD=***",
        ),
        ("unix:///tmp/redis.sock?db=1", "unix:///tmp/redis.sock?db=1"),
        ("unix://:s3cret@/tmp/redis.sock", "unix://:***@/tmp/redis.sock"),
        ("postgresql://[::1]:5432/db", "postgresql://[::1]:5432/db"),
        ("postgresql://u:s3cret@[::1]:5432/db", "postgresql://u:***@[::1]:5432/db"),
        ("memory://", "memory://"),
        ("amqp://user:p@ss:w0rd@host/", "amqp://user:***@host/"),
    ],
)
def test_a_dsn_is_shown_with_its_password_masked(dsn: str, shown: str) -> None:
    assert describe_broker(dsn) == shown
    assert "s3cret" not in describe_broker(dsn)


@pytest.mark.parametrize("dsn", ["redis://:s3cret@[::1", "http://[s3cret"])
def test_an_unparseable_dsn_is_never_echoed(dsn: str) -> None:
    assert describe_broker(dsn) == "<unparseable dsn>"


def test_a_redis_client_is_shown_by_address_without_its_password() -> None:
    assert describe_broker(Redis(host="10.0.0.5", port=6380, db=3, password="s3cret")) == "10.0.0.5:6380/3"
    assert describe_broker(Redis.from_url("unix:///tmp/r.sock?password=s3cret")) == "unix:///tmp/r.sock"


def test_any_other_broker_instance_is_shown_by_its_type() -> None:
    class Pool:
        password = "s3cret"

    assert describe_broker(Pool()) == "broker_instance (Pool)"


def test_dsn_scheme_is_the_lower_cased_scheme() -> None:
    assert dsn_scheme("PostgreSQL+asyncpg://db/x") == "postgresql+asyncpg"
    assert dsn_scheme("no scheme here") == ""
