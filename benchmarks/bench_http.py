"""R3: requests per second of a Litestar handler that enqueues one job vs the same handler without it.

    python benchmarks/bench_http.py [--duration 10] [--connections 50] [--rounds 3] [--brokers redis,postgres]

The app (``create_app`` below) has two GET handlers that differ only in one line: both take the
``TaskQueues`` dependency and return a small JSON body; ``/enqueue`` also awaits
``task_queues.get(QUEUE_NAME).enqueue("noop", ...)``. It is served by uvicorn (one process, on a free
127.0.0.1 port) in a subprocess, and loaded by ``wrk`` (Debian: ``apt-get install wrk``) in another
process, over keep-alive connections on the loopback only; each load run is bounded by ``--duration``.

Workers are off during the load: the queue has ``separate_process=True`` and no ``use_server_lifespan``,
and no worker process runs, so this measures the enqueue path (the broker round trip inside the request),
not job processing. After each ``/enqueue`` run the queued jobs are counted (one per 2xx response) and
deleted. Runs of the two handlers alternate round by round; the figures are medians over the rounds.
Beside req/s it reports the server process's own CPU per request (``/proc/<pid>/stat``), whose ratio
(without / with) holds even when wrk, the broker and other work compete for the machine's cores.
Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from litestar import Litestar, get

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin, TaskQueues

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
BENCH_DATABASE = "saq_bench_http"
QUEUE_ENV = "BENCH_HTTP_DSN"
NAME_ENV = "BENCH_HTTP_QUEUE"
# A name of its own (not "default"), so the clean-up never touches another user's queue on a shared broker.
QUEUE_NAME = os.environ.get(NAME_ENV, "bench-http")


async def noop(_ctx: Any) -> None:
    return None


@get("/plain")
async def plain(task_queues: TaskQueues) -> dict[str, Any]:
    return {"key": None, "queues": len(task_queues)}


@get("/enqueue")
async def enqueue(task_queues: TaskQueues) -> dict[str, Any]:
    job = await task_queues.get(QUEUE_NAME).enqueue("noop", timeout=30)
    return {"key": job.key if job else None, "queues": len(task_queues)}


def create_app() -> Litestar:
    """The benchmarked app; its broker comes from ``$BENCH_HTTP_DSN``."""
    saq = SAQPlugin(
        config=SAQConfig(
            queue_configs=[
                QueueConfig(
                    name=QUEUE_NAME,
                    dsn=os.environ.get(QUEUE_ENV, REDIS_URL),
                    tasks=[("noop", noop)],
                    separate_process=True,  # no worker in the web process: the load measures enqueue only
                )
            ],
            use_server_lifespan=False,
        )
    )
    return Litestar([plain, enqueue], plugins=[saq], logging_config=None, debug=False)


# ---------------------------------------------------------------------------------------------- driver


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(dsn: str, queue_name: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, QUEUE_ENV: dsn, NAME_ENV: queue_name}
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "bench_http:create_app",
        "--app-dir",
        str(Path(__file__).parent),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    server = subprocess.Popen(command, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/plain", timeout=1) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError("uvicorn did not answer within 30 s")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def to_ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * UNITS[unit]


def run_wrk(url: str, duration: float, connections: int) -> dict[str, float]:
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "--latency",
        url,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=duration + 60).stdout
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "requests": requests,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": 1 if errors else 0,
        "p50": to_ms(re.search(r"^\s*50%\s+(\S+)", output, re.MULTILINE).group(1)),  # type: ignore[union-attr]
        "p99": to_ms(re.search(r"^\s*99%\s+(\S+)", output, re.MULTILINE).group(1)),  # type: ignore[union-attr]
    }


async def prepare_database(url: str) -> str:
    import asyncpg

    admin = await asyncpg.connect(url)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", BENCH_DATABASE):
            await admin.execute(f'CREATE DATABASE "{BENCH_DATABASE}"')
    finally:
        await admin.close()
    return urlunsplit(urlsplit(url)._replace(path=f"/{BENCH_DATABASE}"))


async def take_queued(dsn: str, queue_name: str) -> int:
    """Count the jobs the load left queued, then delete them (and the queue's other data)."""
    from litestar_saq.brokers import queue_from_dsn

    queue: Any = queue_from_dsn(dsn, name=queue_name)
    await queue.connect()
    try:
        queued = int(await queue.count("queued"))
        if dsn.startswith("redis"):
            keys = [key async for key in queue.redis.scan_iter(match=f"saq:*{queue_name}*")]
            if keys:
                await queue.redis.delete(*keys)
        else:
            async with queue.pool.acquire() as connection:
                await connection.execute("DELETE FROM saq_jobs WHERE queue = $1", queue_name)
        return queued
    finally:
        await queue.disconnect()


def server_cpu_s(server: subprocess.Popen[bytes]) -> float:
    """CPU seconds (user + system) the server process has used so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{server.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_broker(broker: str, dsn: str, args: argparse.Namespace) -> dict[str, Any]:
    queue_name = f"bench-http-{os.getpid()}"
    port = free_port()
    server = start_server(dsn, queue_name, port)
    runs: dict[str, list[dict[str, float]]] = {"plain": [], "enqueue": []}
    enqueued_ok = True
    try:
        for path in ("plain", "enqueue"):  # warm up both paths
            run_wrk(f"http://127.0.0.1:{port}/{path}", min(2.0, args.duration), args.connections)
        asyncio.run(take_queued(dsn, queue_name))
        for round_number in range(args.rounds):
            order = ("plain", "enqueue") if round_number % 2 == 0 else ("enqueue", "plain")
            for path in order:
                cpu_before = server_cpu_s(server)
                result = run_wrk(f"http://127.0.0.1:{port}/{path}", args.duration, args.connections)
                # The server's own CPU per response: what the handler costs, whatever else shares the cores.
                result["cpu_us"] = (server_cpu_s(server) - cpu_before) * 1e6 / max(1, result["requests"])
                if path == "enqueue":
                    result["queued"] = asyncio.run(take_queued(dsn, queue_name))
                    ok = result["requests"] - result["non_2xx"]
                    # wrk counts responses; a request cut off at the end may still have enqueued its job
                    enqueued_ok &= abs(result["queued"] - ok) <= args.connections
                runs[path].append(result)
                print(f"  {broker} /{path}: {result['rps']:,.0f} req/s", file=sys.stderr, flush=True)
    finally:
        stop_server(server)
        asyncio.run(take_queued(dsn, queue_name))
    medians = {
        path: {
            figure: statistics.median(r[figure] for r in runs[path])
            for figure in ("rps", "p50", "p99", "cpu_us")
        }
        for path in ("plain", "enqueue")
    }
    return {
        **medians,
        "ratio": medians["enqueue"]["rps"] / medians["plain"]["rps"],
        "cpu_ratio": medians["plain"]["cpu_us"] / medians["enqueue"]["cpu_us"],
        "rounds": runs,
        "requests": sum(r["requests"] for rs in runs.values() for r in rs),
        "errors": sum(r["non_2xx"] + r["socket_errors"] for rs in runs.values() for r in rs),
        "jobs_match_responses": enqueued_ok,
    }


BROKER_LABELS = {"redis": "Redis (RedisQueue)", "postgres": "PostgreSQL (AsyncpgQueue)"}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load run (default 10)")
    parser.add_argument("--connections", type=int, default=50, help="keep-alive connections (default 50)")
    parser.add_argument("--rounds", type=int, default=3, help="load runs per handler (default 3)")
    parser.add_argument("--brokers", default="redis,postgres")
    parser.add_argument("--database-url", default=DATABASE_URL)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench_http.py needs wrk: apt-get install -y wrk (or brew install wrk)")
    dsns = {"redis": REDIS_URL}
    brokers = [broker.strip() for broker in args.brokers.split(",") if broker.strip()]
    if "postgres" in brokers:
        dsns["postgres"] = asyncio.run(prepare_database(args.database_url))
    results = {broker: bench_broker(broker, dsns[broker], args) for broker in brokers}

    print(
        f"R3 HTTP, GET handler with vs without one enqueue; uvicorn (1 process) and wrk (1 thread) on "
        f"127.0.0.1; {args.connections} keep-alive connections, {args.duration:g} s per run, "
        f"{args.rounds} alternating rounds per handler (median); no worker running during the load"
    )
    print()
    print(
        "| broker | handler | req/s | latency p50 ms | latency p99 ms | server CPU µs/request "
        "| requests (all rounds) |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for broker, result in results.items():
        label = BROKER_LABELS.get(broker, broker)
        for path in ("plain", "enqueue"):
            figures = result[path]
            count = sum(int(r["requests"]) for r in result["rounds"][path])
            title = "without enqueue" if path == "plain" else "with one enqueue"
            print(
                f"| {label} | {title} | {figures['rps']:,.0f} | {figures['p50']:.2f} | "
                f"{figures['p99']:.2f} | {figures['cpu_us']:,.0f} | {count:,} |"
            )
        print(f"| {label} | ratio with/without | {result['ratio']:.2f}x | | | {result['cpu_ratio']:.2f}x | |")
    print(
        "\nThe CPU ratio is the server's CPU per request without / with the enqueue: the req/s ratio a"
        " server would reach if nothing else (wrk, the broker, other work) competed for its cores."
    )
    for broker, result in results.items():
        if result["errors"] or not result["jobs_match_responses"]:
            print(
                f"\nWarning ({broker}): {result['errors']} non-2xx/socket errors; "
                f"jobs queued match responses: {result['jobs_match_responses']}"
            )
    if args.json:
        payload = {
            "duration": args.duration,
            "connections": args.connections,
            "rounds": args.rounds,
            "results": results,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
