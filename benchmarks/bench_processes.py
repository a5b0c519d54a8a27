"""Worker processes vs one in-process worker: drain rate of no-op jobs and SIGTERM-to-exit time.

    python benchmarks/bench_processes.py [--jobs 3000] [--processes 2] [--concurrency 20] [--rounds 3]

For each setup it starts the real CLI on the same Redis (``REDIS_URL``, default redis://127.0.0.1:6379/0):

- ``in-process``: ``litestar --app benchmarks.bench_processes:app workers run`` (one worker);
- ``processes``: ``litestar --app benchmarks.bench_processes:app workers run --process --workers N``.

Each round waits until every worker has registered, enqueues ``--jobs`` no-op jobs scheduled a few
seconds ahead (so they become due at once, for all workers alike), and measures from the moment the
first one leaves the schedule until none is left. Then it sends SIGTERM to the idle CLI and measures
until it has exited. Setups alternate every round so drift hits both. Not a test: nothing asserts.

This module is also the app the CLI loads (``BENCH_QUEUE`` in the environment names its queue).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parents[1]
SCHEDULE_AHEAD_S = 3.0


async def noop(ctx: dict[str, Any]) -> None:
    return None


def _build_app() -> Any:
    from litestar import Litestar

    from litestar_saq import QueueConfig, SAQConfig, SAQPlugin

    queue_config = QueueConfig(
        name=os.environ["BENCH_QUEUE"],
        dsn=REDIS_URL,
        tasks=[noop],
        concurrency=int(os.environ.get("BENCH_CONCURRENCY", "20")),
        timers={"worker_info": 1, "schedule": 1},
        shutdown_grace_period_s=5,
    )
    return Litestar(plugins=[SAQPlugin(SAQConfig(queue_configs=[queue_config]))])


if os.environ.get("BENCH_QUEUE"):
    app = _build_app()


def _tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by ``pid`` and its children (Linux /proc)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def _measure(setup: str, jobs: int, processes: int, concurrency: int) -> tuple[float, float, float]:
    """Return (jobs per second, worker CPU µs per job, seconds from SIGTERM to exit) for one round."""
    from litestar_saq.backends.redis import RedisQueue

    queue_name = f"bench-processes-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "BENCH_QUEUE": queue_name,
        "BENCH_CONCURRENCY": str(concurrency),
        "LITESTAR_QUIET_CONSOLE": "1",
    }
    extra = ["--process", "--workers", str(processes)] if setup == "processes" else []
    expected_workers = processes if setup == "processes" else 1
    queue = RedisQueue.from_url(REDIS_URL, name=queue_name)
    await queue.connect()
    cli = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "litestar",
            "--app",
            "benchmarks.bench_processes:app",
            "workers",
            "run",
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while len((await queue.info())["workers"]) < expected_workers:
            if time.monotonic() > deadline or cli.poll() is not None:
                raise RuntimeError(f"{setup}: workers did not register within 30 s")
            await asyncio.sleep(0.05)

        cpu_before = _tree_cpu_seconds(cli.pid)
        due = time.time() + SCHEDULE_AHEAD_S
        for start in range(0, jobs, 200):
            await asyncio.gather(
                *(queue.enqueue("noop", scheduled=int(due)) for _ in range(min(200, jobs - start)))
            )
        # Due jobs leave the schedule together (the workers' schedule timer moves them); the clock
        # starts when the first has left it and stops when none is incomplete. Polled every 5 ms with
        # one round trip, so the measurement barely loads Redis.
        while await queue.redis.zcount(queue.namespace("incomplete"), 1, "+inf") >= jobs:
            await asyncio.sleep(0.005)
        started = time.monotonic()
        while await queue.redis.zcard(queue.namespace("incomplete")) > 0:
            await asyncio.sleep(0.005)
        drain_rate = jobs / (time.monotonic() - started)
        # Includes the idle seconds before the jobs were due (a few ms of upkeep).
        cpu_per_job_us = (_tree_cpu_seconds(cli.pid) - cpu_before) / jobs * 1e6

        sigterm_at = time.monotonic()
        cli.send_signal(signal.SIGTERM)
        cli.wait(timeout=60)
        exit_s = time.monotonic() - sigterm_at
        if cli.returncode != 0:
            raise RuntimeError(f"{setup}: exit code {cli.returncode} after SIGTERM")
        return drain_rate, cpu_per_job_us, exit_s
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        keys = [key async for key in queue.redis.scan_iter(match=f"saq:*{queue_name}*")]
        if keys:
            await queue.redis.delete(*keys)
        await queue.disconnect()


async def _main(jobs: int, processes: int, concurrency: int, rounds: int) -> None:
    setups = ["in-process", "processes"]
    results: dict[str, list[tuple[float, float, float]]] = {setup: [] for setup in setups}
    for round_index in range(rounds):
        for setup in setups if round_index % 2 == 0 else reversed(setups):
            results[setup].append(await _measure(setup, jobs, processes, concurrency))
    print(f"{jobs} no-op jobs, concurrency {concurrency} per worker, {rounds} rounds, Redis {REDIS_URL}")
    print("| setup | drain jobs/s (median) | all rounds | worker CPU µs/job | SIGTERM to exit, idle s |")
    print("| --- | --- | --- | --- | --- |")
    medians: dict[str, float] = {}
    for setup in setups:
        rates = [rate for rate, _, _ in results[setup]]
        medians[setup] = statistics.median(rates)
        cpu = statistics.median(cpu_us for _, cpu_us, _ in results[setup])
        exits = statistics.median(exit_s for _, _, exit_s in results[setup])
        label = f"workers run --process --workers {processes}" if setup == "processes" else "workers run"
        print(
            f"| {label} | {medians[setup]:,.0f} | {', '.join(f'{rate:,.0f}' for rate in rates)} "
            f"| {cpu:,.0f} | {exits:.2f} |"
        )
    print(f"processes / in-process drain ratio: {medians['processes'] / medians['in-process']:.2f}")


def main() -> None:
    """Run the benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(_main(arguments.jobs, arguments.processes, arguments.concurrency, arguments.rounds))


if __name__ == "__main__":
    main()
