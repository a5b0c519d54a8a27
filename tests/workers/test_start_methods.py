"""Children get plain data only, so every start method works (Python 3.14 defaults to forkserver)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from saq.job import Status

from litestar_saq.backends.redis import RedisQueue
from tests.support.poll import until_finished, wait_until
from tests.support.procs import ROOT, CliProcess, children_of, is_alive, kill_session


@pytest.mark.parametrize("start_method", ["forkserver", "fork"])
async def test_supervisor_runs_children_under_other_start_methods(
    app_env: dict[str, str], redis_queue: RedisQueue, tmp_path: Path, start_method: str
) -> None:
    log_path = tmp_path / "supervisor.log"
    with log_path.open("wb") as log_file:
        popen = subprocess.Popen(
            [sys.executable, "-m", "tests.workers.apps.supervise", start_method, redis_queue.name],
            cwd=ROOT,
            env=app_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    process = CliProcess(popen, log_path)
    try:
        await wait_until(
            lambda: process.log().count("worker running in process") == 2, timeout=20, what="two workers"
        )
        jobs = [await redis_queue.enqueue("report") for _ in range(6)]
        for job in jobs:
            assert job is not None
            await until_finished(job, timeout=20)
            assert job.status == Status.COMPLETE, process.log()
            assert job.result["greeting"] == f"hello from on_startup in {job.result['pid']}"
        descendants = children_of(process.pid)
        process.send(signal.SIGTERM)
        assert await process.wait_exit(timeout=15) == 0, process.log()
        await wait_until(
            lambda: not any(is_alive(pid) for pid in descendants), timeout=5, what="no child left"
        )
    finally:
        kill_session(process)
