"""``litestar run`` with ``use_server_lifespan=True`` supervises the worker processes of the server."""

from __future__ import annotations

import signal
from collections.abc import Callable

import httpx
import pytest
from saq.job import Status

from litestar_saq.backends.redis import RedisQueue
from tests.support.poll import until_finished, wait_until
from tests.support.procs import CliProcess, children_of, free_port, is_alive

StartCli = Callable[..., CliProcess]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_litestar_run_starts_and_stops_the_worker_processes_once_per_server(
    cli: StartCli,
    app_env: dict[str, str],
    redis_queue: RedisQueue,
    redis_url: str,
    stop_signal: signal.Signals,
) -> None:
    in_app_queue = RedisQueue.from_url(redis_url, name=f"{redis_queue.name}-in-app")
    await in_app_queue.connect()
    port = free_port()
    env = {
        **app_env,
        "TEST_SERVER_LIFESPAN": "1",
        "TEST_QUEUE_IN_APP": in_app_queue.name,
        # --app wins over LITESTAR_APP, for the worker processes too.
        "LITESTAR_APP": "tests.workers.apps.no_plugin:app",
    }
    try:
        server = cli(["run", "--port", str(port)], env)

        async def server_answers() -> bool:
            try:
                async with httpx.AsyncClient() as client:
                    return (await client.get(f"http://127.0.0.1:{port}/health")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_until(server_answers, timeout=20, what="the server to answer")
        [worker_pid] = await wait_until(server.worker_pids, timeout=20, what="the worker process")

        separate = await redis_queue.enqueue("report")
        in_app = await in_app_queue.enqueue("report")
        assert separate is not None and in_app is not None
        for job in (separate, in_app):
            await until_finished(job, timeout=20)
            assert job.status == Status.COMPLETE, server.log()
        # The separate_process queue runs in the supervised child, the other one in the web process.
        assert separate.result["pid"] == worker_pid
        assert separate.result["greeting"] == f"hello from on_startup in {worker_pid}"
        assert in_app.result["pid"] == server.pid
        assert server.worker_pids() == [worker_pid]  # once per server

        children = children_of(server.pid)
        server.send(stop_signal)
        returncode = await server.wait_exit(timeout=20)
        if stop_signal == signal.SIGTERM:
            # The status a shell reports for a process killed by SIGTERM, after the children stopped.
            assert returncode == 143, server.log()
        assert "server stopped: stopping worker processes" in server.log()
        assert f"worker process {worker_pid} stopped with code 0" in server.log()
        await wait_until(lambda: not any(is_alive(pid) for pid in children), timeout=5, what="no child left")
    finally:
        await in_app_queue.disconnect()
        keys = [key async for key in redis_queue.redis.scan_iter(match=f"saq:*{in_app_queue.name}*")]
        if keys:
            await redis_queue.redis.delete(*keys)
