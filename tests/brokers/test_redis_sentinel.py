"""Redis Sentinel (``redis+sentinel://`` and a Sentinel-managed ``broker_instance``) and the Cluster refusal.

The failover test starts a primary, a replica and three sentinels of its own, SIGKILLs the primary
mid-run and counts what asynchronous replication lost: only jobs acknowledged in the failover window
may be lost, every job enqueued after it runs.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import RedisError
from saq.job import Status

from litestar_saq import QueueConfig, SAQConfig
from litestar_saq.backends.redis_sentinel import SentinelAddress, SentinelRedisQueue
from litestar_saq.brokers import queue_from_config, queue_from_dsn
from litestar_saq.dsn import describe_broker
from litestar_saq.exceptions import BrokerUnavailableError, SAQConfigError
from tests.support.poll import wait_until
from tests.support.sentinel import SERVICE, SentinelSet
from tests.support.workers import running_worker


def test_sentinel_dsn_names_sentinels_service_db_and_credentials() -> None:
    address = SentinelAddress("redis+sentinel://u:p%40ss@h1:26379,h2:26380/mymaster/3?sentinel_password=s")
    assert address.sentinels == [("h1", 26379), ("h2", 26380)]
    assert (address.service, address.db, address.username, address.password) == ("mymaster", 3, "u", "p@ss")
    assert address.options == {"sentinel_password": "s"}
    assert describe_broker("redis+sentinel://u:secret@h1:26379/m/0?sentinel_password=x") == (
        "redis+sentinel://u:***@h1:26379/m/0?sentinel_password=***"
    )


def test_malformed_sentinel_dsn_fails_naming_the_queue_without_the_password() -> None:
    with pytest.raises(SAQConfigError) as error:
        queue_from_dsn("redis+sentinel://:secret@h1:26379/", name="q")
    assert "queue 'q'" in str(error.value) and "secret" not in str(error.value)


@pytest.mark.parametrize("dsn", ["redis+cluster://h1:7000,h2:7001/0", "rediss+cluster://h1:7000"])
def test_cluster_dsn_is_refused_saying_why_and_what_to_use(dsn: str) -> None:
    with pytest.raises(SAQConfigError) as error:
        QueueConfig(name="q", dsn=dsn)
    message = str(error.value)
    assert "Redis Cluster is not supported" in message and "CROSSSLOT" in message
    assert "redis+sentinel://" in message


def test_cluster_client_is_refused_as_broker_instance() -> None:
    client = RedisCluster(host="127.0.0.1", port=7000)
    queue_config = QueueConfig(name="q", broker_instance=client)
    with pytest.raises(SAQConfigError, match="Redis Cluster is not supported"):
        queue_from_config(queue_config, SAQConfig(queue_configs=[queue_config]))


@pytest.fixture
def sentinels(tmp_path: Path) -> Any:
    servers = SentinelSet(tmp_path)
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()


@pytest.mark.fleet
async def test_sentinel_managed_broker_instance_is_used_and_shown(sentinels: SentinelSet) -> None:
    sentinel = Sentinel([("127.0.0.1", port) for port in sentinels.sentinel_ports])  # type: ignore[no-untyped-call]
    client = sentinel.master_for(SERVICE)
    queue_config = QueueConfig(name="sentinel-instance", broker_instance=client)
    queue, owned = queue_from_config(queue_config, SAQConfig(queue_configs=[queue_config]))
    assert owned and describe_broker(client).startswith("redis+sentinel://127.0.0.1:")
    await queue.connect()
    try:
        assert await queue.enqueue("noop", key="k") is not None
        assert await client.get("saq:job:sentinel-instance:k") is not None
    finally:
        await queue.disconnect()
        await client.aclose()
        for sentinel_client in sentinel.sentinels:
            await sentinel_client.aclose()


TERMINAL = (Status.COMPLETE, Status.FAILED, Status.ABORTED)
JOBS = 3000
KILL_AT = 1000


@pytest.mark.fleet
async def test_failover_mid_run_loses_only_jobs_acknowledged_in_the_window(
    sentinels: SentinelSet, queue_name: str
) -> None:
    runs: collections.Counter[str] = collections.Counter()

    async def record(ctx: Any, *, n: int) -> int:
        runs[ctx["job"].key] += 1
        return n

    queue = queue_from_dsn(sentinels.dsn, name=queue_name)
    enqueuer = queue_from_dsn(sentinels.dsn, name=queue_name)
    assert isinstance(queue, SentinelRedisQueue)
    await queue.connect()
    await enqueuer.connect()
    acked: dict[str, float] = {}
    killed_at = failed_over_at = 0.0
    try:
        async with running_worker(queue, [("record", record)], concurrency=10, timers={"sweep": 1}):
            for n in range(JOBS):
                acked[f"j{n}"] = await _enqueue_retrying(enqueuer, n)
                if n == KILL_AT:
                    assert sentinels.primary.process is not None
                    os.kill(sentinels.primary.process.pid, signal.SIGKILL)
                    killed_at = time.monotonic()
                if n % 20 == 0:
                    await asyncio.sleep(0.005)  # a steady stream, not one burst
                if killed_at and not failed_over_at and sentinels.primary_port() == sentinels.replica.port:
                    failed_over_at = time.monotonic()
            await wait_until(
                lambda: sentinels.primary_port() == sentinels.replica.port, timeout=30, what="failover"
            )
            failed_over_at = failed_over_at or time.monotonic()
            lost = await wait_until(
                lambda: _settled(queue, acked, runs), timeout=90, what="every acknowledged job to end"
            )
        window = [key for key, at in acked.items() if killed_at - 0.5 <= at <= failed_over_at]
        twice = [key for key, count in runs.items() if count > 1]
        print(
            f"\nsentinel failover: {failed_over_at - killed_at:.1f} s; {len(acked)} jobs acknowledged, "
            f"{len(window)} in the failover window, {len(lost)} lost, {len(twice)} run twice"
        )
        assert set(lost) <= set(window), "a job acknowledged outside the failover window was lost"
        assert set(twice) <= set(window) | {key for key, at in acked.items() if at <= failed_over_at}
        after = [key for key, at in acked.items() if at > failed_over_at]
        assert after and all(runs[key] == 1 for key in after)
    finally:
        await enqueuer.disconnect()
        await queue.disconnect()


async def _enqueue_retrying(queue: Any, n: int) -> float:
    """Enqueue job ``j<n>``, retrying through the failover for up to 30 s; return when it was acknowledged."""
    deadline = time.monotonic() + 30
    while True:
        try:
            assert await queue.enqueue("record", n=n, key=f"j{n}") is not None
            return time.monotonic()
        except (RedisError, BrokerUnavailableError, OSError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def _settled(queue: Any, acked: dict[str, float], runs: collections.Counter[str]) -> list[str] | None:
    """The acknowledged jobs that never ran, once none is waiting or running any more.

    Gone from the new primary (the enqueue was not replicated), or ended without running (its worker's
    start write met the failover and the job, without retries, failed).
    """
    lost = []
    for key in (key for key in acked if not runs[key]):
        job = await queue.job(key)
        if job is not None and job.status not in TERMINAL:
            return None  # still queued or running
        lost.append(key)
    return lost
