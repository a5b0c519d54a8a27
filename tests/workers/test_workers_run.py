"""``litestar workers run``: in this process and in supervised child processes, with real signals."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

from saq.job import Status

from litestar_saq.backends.redis import RedisQueue
from tests.support.poll import until_finished, wait_until
from tests.support.procs import CliProcess, is_alive

StartCli = Callable[..., CliProcess]


async def test_in_process_run_works_every_queue_in_this_process(
    cli: StartCli, app_env: dict[str, str], redis_queue: RedisQueue, redis_url: str
) -> None:
    in_app_queue = RedisQueue.from_url(redis_url, name=f"{redis_queue.name}-in-app")
    await in_app_queue.connect()
    try:
        process = cli(["workers", "run"], {**app_env, "TEST_QUEUE_IN_APP": in_app_queue.name})
        for queue in (redis_queue, in_app_queue):
            job = await queue.enqueue("report")
            assert job is not None
            await until_finished(job, timeout=20)
            assert job.status == Status.COMPLETE, process.log()
            # Both the separate_process queue and the in-app queue run here, with the app's state.
            assert job.result == {
                "pid": process.pid,
                "greeting": f"hello from on_startup in {process.pid}",
                "queue": queue.name,
            }
        assert process.worker_pids() == []
        process.send(signal.SIGTERM)
        assert await process.wait_exit(timeout=15) == 0, process.log()
    finally:
        await in_app_queue.disconnect()


async def test_process_mode_runs_jobs_in_children_with_the_app_state(
    cli: StartCli, app_env: dict[str, str], redis_queue: RedisQueue
) -> None:
    process = cli(["workers", "run", "--process", "--workers", "2"], app_env)
    children = await wait_until(
        lambda: len(process.worker_pids()) == 2 and process.worker_pids(),
        timeout=20,
        what="two worker processes",
    )
    jobs = [await redis_queue.enqueue("report") for _ in range(20)]
    for job in jobs:
        assert job is not None
        await until_finished(job, timeout=20)
        assert job.status == Status.COMPLETE, process.log()
        assert job.result["pid"] in children, (job.result, children)
        # The child ran the app's on_startup hook itself: ctx["state"] is its own.
        assert job.result["greeting"] == f"hello from on_startup in {job.result['pid']}"

    process.send(signal.SIGTERM)
    assert await process.wait_exit(timeout=15) == 0, process.log()
    assert not [pid for pid in children if is_alive(pid)], process.log()


async def test_second_sigint_while_draining_lets_the_running_job_finish(
    cli: StartCli, app_env: dict[str, str], redis_queue: RedisQueue
) -> None:
    process = cli(["workers", "run", "--process"], {**app_env, "TEST_GRACE": "10"})
    children = await wait_until(process.worker_pids, timeout=20, what="a worker process")
    job = await redis_queue.enqueue("sleep_for", seconds=2, timeout=30)
    assert job is not None

    await wait_until(lambda: "sleep_for started" in process.log(), timeout=20, what="the job to start")
    process.send(signal.SIGINT)
    await wait_until(
        lambda: "stop requested again" not in process.log() and "stopping worker processes" in process.log(),
        timeout=5,
        what="the supervisor to start draining",
    )
    process.send(signal.SIGINT)  # a second Ctrl-C must not cut the job short

    assert await process.wait_exit(timeout=20) == 0, process.log()
    await job.refresh()
    assert job.status == Status.COMPLETE, (job.status, job.error, process.log())
    assert "stop requested again" in process.log()
    assert not [pid for pid in children if is_alive(pid)]


async def test_sigterm_after_the_grace_period_puts_the_running_job_back(
    cli: StartCli, app_env: dict[str, str], redis_queue: RedisQueue
) -> None:
    process = cli(["workers", "run", "--process"], {**app_env, "TEST_GRACE": "1"})
    children = await wait_until(process.worker_pids, timeout=20, what="a worker process")
    job = await redis_queue.enqueue("sleep_for", seconds=30, timeout=60)
    assert job is not None

    await wait_until(lambda: "sleep_for started" in process.log(), timeout=20, what="the job to start")
    process.send(signal.SIGTERM)
    assert await process.wait_exit(timeout=15) == 0, process.log()
    await job.refresh()
    # Not lost: back on the queue for the next worker.
    assert job.status == Status.QUEUED, (job.status, job.error, process.log())
    assert await redis_queue.count("queued") == 1
    assert not [pid for pid in children if is_alive(pid)]


async def test_killed_child_is_restarted_and_the_log_names_queue_pid_and_code(
    cli: StartCli, app_env: dict[str, str], redis_queue: RedisQueue
) -> None:
    process = cli(["workers", "run", "--process"], app_env)
    [first] = await wait_until(process.worker_pids, timeout=20, what="a worker process")
    await wait_until(
        lambda: "worker running in process" in process.log(), timeout=20, what="the worker to run"
    )

    os.kill(first, signal.SIGKILL)
    [second] = await wait_until(
        lambda: (pids := process.worker_pids()) and pids != [first] and pids,
        timeout=20,
        what="a new worker process",
    )
    log = process.log()
    assert (
        f"queue '{redis_queue.name}': worker process {first} exited with code -9 (killed by SIGKILL)" in log
    )
    assert "restarting it in 1 s" in log
    job = await redis_queue.enqueue("report")
    assert job is not None
    await until_finished(job, timeout=20)
    assert job.result["pid"] == second

    process.send(signal.SIGTERM)
    assert await process.wait_exit(timeout=15) == 0, process.log()
    assert not is_alive(second)
