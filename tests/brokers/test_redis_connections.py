"""``RedisQueue`` keeps a few connections idle for its script calls: they recover when Redis drops them,
go back to a user's pool on disconnect, and a pool that must share its few connections keeps none."""

from __future__ import annotations

from redis import asyncio as aioredis
from saq.job import Status

from litestar_saq.backends.redis import RedisQueue
from tests.support.brokers import delete_redis_keys


def _in_use(client: aioredis.Redis) -> set[object]:
    # redis-py has no public view of checked-out connections; the pool's own set is what we check.
    return set(client.connection_pool._in_use_connections)


async def test_enqueue_and_finish_go_on_after_redis_dropped_every_connection(
    redis_url: str, queue_name: str
) -> None:
    # The client names its connections, so only this queue's are killed (the Redis is shared).
    queue = RedisQueue.from_url(redis_url, name=queue_name, client_name=queue_name)
    await queue.connect()
    killer = aioredis.from_url(redis_url, decode_responses=True)
    try:
        first = await queue.enqueue("count_run", timeout=5)
        assert first is not None
        assert _in_use(queue.redis)  # kept idle for the next call
        ours = [client["id"] for client in await killer.client_list() if client["name"] == queue_name]
        assert ours
        for client_id in ours:
            await killer.client_kill_filter(_id=client_id)
        for number in range(20):  # every kept connection is dead: the calls must reconnect, not fail
            assert await queue.enqueue("count_run", timeout=5, key=f"after-kill-{number}") is not None
        stored = await queue.job(first.key)
        assert stored is not None
        await queue.finish(stored, Status.COMPLETE, result=1)
        finished = await queue.job(first.key)
        assert finished is not None
        assert finished.status == Status.COMPLETE
        assert finished.result == 1
    finally:
        await delete_redis_keys(killer, queue_name)
        await killer.aclose()
        await queue.disconnect()


async def test_disconnect_gives_the_kept_connections_back_to_a_users_client(
    redis_url: str, queue_name: str
) -> None:
    async def in_use_after_disconnect(enqueue: bool) -> int:
        client = aioredis.from_url(redis_url)
        queue = RedisQueue(client, name=queue_name, owns_client=False)
        await queue.connect()
        try:
            if enqueue:
                await queue.enqueue_many([("count_run", {"n": n}) for n in range(3)])
                assert await queue.enqueue("count_run", timeout=5) is not None
                assert _in_use(client)
            await queue.disconnect()
            assert await client.ping()  # the user's client is still open
            return len(_in_use(client))
        finally:
            await delete_redis_keys(client, queue_name)
            await client.aclose()

    # SAQ's unsubscribe on disconnect takes a connection of its own; nothing else may stay out.
    assert await in_use_after_disconnect(enqueue=True) == await in_use_after_disconnect(enqueue=False)


async def test_a_blocking_pool_keeps_no_connection_idle(redis_url: str, queue_name: str) -> None:
    client = aioredis.Redis(
        connection_pool=aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=2, timeout=5)
    )
    queue = RedisQueue(client, name=queue_name, owns_client=False)
    await queue.connect()
    try:
        for number in range(5):
            assert await queue.enqueue("count_run", timeout=5, key=f"blocking-{number}") is not None
        assert not _in_use(client)
    finally:
        await queue.disconnect()
        await delete_redis_keys(client, queue_name)
        await client.aclose()
        await client.connection_pool.aclose()  # a client given a pool leaves it open
