"""Soak test: enqueue jobs for a while under injected faults; report enqueued, run, lost, duplicated.

    python benchmarks/soak.py --broker redis --minutes 10 [--rate 100] [--kill-every 20] [--restart-every 60]
    python benchmarks/soak.py --broker postgres --minutes 10 [--terminate-every 30]

Workers run as ``litestar workers run --process --workers 2`` on ``tests/reliability/apps/counting_app.py``
(the app of the exactly-once CI test). Faults:
SIGKILL of a random worker child (every ``--kill-every`` s), restart of the broker — a private
redis-server with an append-only file, so a restart loses nothing (``--restart-every``) — or, for
PostgreSQL, ``pg_terminate_backend`` on every connection of the workers (``--terminate-every``).

A job counts as *lost* if its enqueue succeeded but it never ran; as *duplicated* if it ran twice
in the same attempt (a queue bug). A job whose worker was killed mid-run runs again in a later
attempt: that is at-least-once delivery working, and is reported separately as *re-run after kill*.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
PG_DSN = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
    return found


async def enqueue_loop(
    queue: object, deadline: float, rate: float, enqueued: list[str], failures: list[str]
) -> None:
    interval = 1 / rate
    next_at = time.monotonic()
    while time.monotonic() < deadline:
        key = uuid.uuid4().hex
        try:
            job = await queue.enqueue("record_run", key=key, timeout=30, retries=5)  # type: ignore[attr-defined]
            if job is not None:
                enqueued.append(key)
        except Exception as exc:  # broker down during a fault: the caller sees the error, nothing is lost
            failures.append(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(0.2)
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def fault_loop(
    args: argparse.Namespace,
    supervisor: subprocess.Popen[bytes],
    redis: PrivateRedis | None,
    deadline: float,
    log: list[str],
) -> None:
    next_kill = time.monotonic() + args.kill_every
    next_broker_fault = time.monotonic() + (args.restart_every if redis else args.terminate_every)
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = time.monotonic()
        if args.kill_every and now >= next_kill:
            children = children_of(supervisor.pid)
            if children:
                victim = random.choice(children)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(victim, signal.SIGKILL)
                log.append(f"{time.strftime('%H:%M:%S')} SIGKILL worker child {victim}")
            next_kill = now + args.kill_every
        if redis is not None and args.restart_every and now >= next_broker_fault:
            redis.stop()
            await asyncio.sleep(1)
            redis.start()
            log.append(f"{time.strftime('%H:%M:%S')} restarted Redis")
            next_broker_fault = now + args.restart_every
        if redis is None and args.terminate_every and now >= next_broker_fault:
            conn = await asyncpg.connect(PG_DSN)
            killed = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND datname = current_database() "
                "AND application_name <> 'soak-monitor'"
            )
            await conn.close()
            log.append(f"{time.strftime('%H:%M:%S')} pg_terminate_backend on {killed} connections")
            next_broker_fault = now + args.terminate_every


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--broker", choices=["redis", "postgres"], default="redis")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate", type=float, default=100, help="jobs enqueued per second")
    parser.add_argument("--kill-every", type=float, default=20)
    parser.add_argument("--restart-every", type=float, default=60)
    parser.add_argument("--terminate-every", type=float, default=30)
    parser.add_argument("--drain-timeout", type=float, default=120)
    args = parser.parse_args()

    from litestar_saq.brokers import queue_from_dsn

    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    redis = PrivateRedis(workdir) if args.broker == "redis" else None
    if redis is not None:
        redis.start()
        dsn = f"redis://127.0.0.1:{redis.port}/0"
    else:
        dsn = PG_DSN
    queue_name = f"soak-{uuid.uuid4().hex[:6]}"
    runs_table = f"soak_runs_{uuid.uuid4().hex[:6]}"
    monitor = await asyncpg.connect(PG_DSN, server_settings={"application_name": "soak-monitor"})
    await monitor.execute(f'CREATE TABLE "{runs_table}" (key TEXT, attempt INT, pid INT)')
    env = {
        **os.environ,
        "COUNT_DSN": dsn,
        "COUNT_QUEUE": queue_name,
        "COUNT_TABLE": runs_table,
        "DATABASE_URL": PG_DSN,
    }
    log_path = workdir / "workers.log"
    with log_path.open("wb") as log_file:
        supervisor = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "litestar",
                "--app",
                "tests.reliability.apps.counting_app:app",
                "workers",
                "run",
                "--process",
                "--workers",
                "2",
            ],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    queue = queue_from_dsn(dsn, name=queue_name)
    await queue.connect()
    enqueued: list[str] = []
    failures: list[str] = []
    faults: list[str] = []
    started = time.monotonic()
    deadline = started + args.minutes * 60
    try:
        await asyncio.gather(
            enqueue_loop(queue, deadline, args.rate, enqueued, failures),
            fault_loop(args, supervisor, redis, deadline, faults),
        )
        drain_deadline = time.monotonic() + args.drain_timeout
        expected = set(enqueued)
        while time.monotonic() < drain_deadline:
            ran = {row["key"] for row in await monitor.fetch(f'SELECT DISTINCT key FROM "{runs_table}"')}
            if expected <= ran:
                break
            await asyncio.sleep(1)
        rows = await monitor.fetch(
            f'SELECT key, attempt, count(*) AS runs FROM "{runs_table}" GROUP BY key, attempt'
        )
    finally:
        supervisor.send_signal(signal.SIGTERM)
        supervisor.wait(timeout=60)
        await queue.disconnect()
        await monitor.execute(f'DROP TABLE "{runs_table}"')
        await monitor.close()
        if redis is not None:
            redis.stop()
    attempts_by_key: dict[str, list[int]] = {}
    same_attempt_twice = 0
    for row in rows:
        attempts_by_key.setdefault(row["key"], []).append(row["attempt"])
        if row["runs"] > 1 and row["key"] in expected:
            same_attempt_twice += 1
    lost = [key for key in enqueued if key not in attempts_by_key]
    rerun = sum(1 for key in enqueued if len(attempts_by_key.get(key, [])) > 1)
    print(f"soak: broker={args.broker}, {args.minutes} min, {args.rate}/s, workers run --process --workers 2")
    print(
        f"faults injected: {len(faults)} ({sum('SIGKILL' in f for f in faults)} child kills, "
        f"{sum('Redis' in f or 'terminate' in f for f in faults)} broker faults)"
    )
    print(
        "| enqueued | enqueue errors (caller told) | ran | lost | duplicated (same attempt twice) "
        "| re-run after kill |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {len(enqueued)} | {len(failures)} | {len(enqueued) - len(lost)} | {len(lost)} "
        f"| {same_attempt_twice} | {rerun} |"
    )
    print(f"supervisor exit code: {supervisor.returncode}; worker log: {log_path}")


if __name__ == "__main__":
    asyncio.run(main())
