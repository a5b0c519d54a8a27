"""Waiting on our ``RedisQueue`` leaves nothing behind: each wait closes its own subscription, whether it
returned, timed out or was cancelled, and the queue disconnects at once afterwards."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from redis import asyncio as aioredis
from saq.job import Job, Status

from litestar_saq.backends.redis import RedisQueue
from tests.support.brokers import delete_redis_keys
from tests.support.poll import wait_until


def _is_terminal(_key: str, status: Status) -> bool:
    return status in (Status.COMPLETE, Status.FAILED, Status.ABORTED)


async def test_many_waits_that_end_every_way_leave_no_subscription_and_disconnect_at_once(
    redis_url: str, queue_name: str
) -> None:
    queue = RedisQueue.from_url(redis_url, name=queue_name, client_name=queue_name)
    await queue.connect()
    observer = aioredis.from_url(redis_url, decode_responses=True)
    try:
        waiting = await queue.enqueue("never_runs", timeout=5)
        assert waiting is not None
        for _ in range(50):  # timed out
            with contextlib.suppress(asyncio.TimeoutError):
                await queue.listen([waiting.key], _is_terminal, timeout=0.01)
        for _ in range(50):  # cancelled while waiting
            listening = asyncio.ensure_future(queue.listen([waiting.key], _is_terminal, timeout=None))
            await asyncio.sleep(0)
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening
        for number in range(100):  # returned: finished meanwhile
            job = await queue.enqueue("never_runs", timeout=5, key=f"done-{number}")
            assert job is not None
            await queue.finish(job, Status.COMPLETE)
            await queue.listen([job.key], _is_terminal, timeout=5)

        async def no_subscribed_connection() -> bool:  # a closed socket leaves Redis's list a moment later
            clients = [client for client in await observer.client_list() if client["name"] == queue_name]
            return not [client for client in clients if int(client["sub"]) or int(client["psub"])]

        await wait_until(no_subscribed_connection, timeout=10, what="every subscription to be closed")
        await asyncio.wait_for(queue.disconnect(), 5)
    finally:
        await delete_redis_keys(observer, queue_name)
        await observer.aclose()


async def test_a_wait_with_no_keys_returns_and_a_missing_job_times_out(redis_queue: RedisQueue) -> None:
    await redis_queue.listen([], _is_terminal, timeout=5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        await redis_queue.listen(["no-such-job"], _is_terminal, timeout=0.2, poll_interval=0.05)
    except asyncio.TimeoutError:
        assert loop.time() - started < 2
    else:
        raise AssertionError("listen on a missing job returned instead of timing out")


async def test_a_wait_cancelled_at_any_point_ends_at_once(redis_queue: RedisQueue) -> None:
    # Cancelled after 0..8 turns of the loop: in redis-py's connect, its handshake, the SUBSCRIBE or the
    # read. On Python 3.11 a cancellation landing in redis-py's own asyncio.wait_for was lost and a wait
    # without a timeout went on for ever (seen as a 120 s test timeout in CI).
    waiting = await redis_queue.enqueue("never_runs", timeout=5)
    assert waiting is not None
    for number in range(270):
        turns = number % 9
        listening = asyncio.ensure_future(redis_queue.listen([waiting.key], _is_terminal, timeout=None))
        for _ in range(turns):
            await asyncio.sleep(0)
        listening.cancel()
        done, _ = await asyncio.wait({listening}, timeout=5)
        assert done, f"a wait cancelled after {turns} loop turns went on waiting"
        assert listening.cancelled(), f"a wait cancelled after {turns} loop turns did not end cancelled"


class _LosesCancellations(RedisQueue):
    """A queue whose job reads swallow a cancellation, as redis-py's connect can on Python 3.11."""

    async def jobs(self, job_keys: Iterable[str]) -> list[Job | None]:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.05)  # stands for a connect whose asyncio.wait_for loses the cancellation
        return await super().jobs(job_keys)


async def test_a_wait_ends_on_time_even_when_a_read_loses_its_cancellation(
    redis_url: str, queue_name: str
) -> None:
    queue = _LosesCancellations.from_url(redis_url, name=queue_name)
    await queue.connect()
    try:
        waiting = await queue.enqueue("never_runs", timeout=5)
        assert waiting is not None
        loop = asyncio.get_running_loop()
        started = loop.time()
        with contextlib.suppress(asyncio.TimeoutError):  # its timeout comes while it reads the job
            await asyncio.wait_for(queue.listen([waiting.key], _is_terminal, timeout=0.01), 5)
            raise AssertionError("the wait returned although its job never ran")
        assert loop.time() - started < 2, "the wait went on after its timeout"
        listening = asyncio.ensure_future(queue.listen([waiting.key], _is_terminal, timeout=None))
        await asyncio.sleep(0.01)  # the cancellation lands in its first read (50 ms); any point would do
        listening.cancel()
        done, _ = await asyncio.wait({listening}, timeout=5)
        assert done and listening.cancelled(), "a cancelled wait went on waiting"
    finally:
        await delete_redis_keys(queue.redis, queue_name)
        await queue.disconnect()
