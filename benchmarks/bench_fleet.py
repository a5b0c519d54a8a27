"""A fleet of three hosts (network namespaces, ``tests/fleet/harness.py``): throughput and recovery time.

    sudo .venv/bin/python benchmarks/bench_fleet.py [--jobs 20000] [--rounds 3] [--brokers redis,postgres]

Needs root (``ip netns``, ``unshare``) and the Debian ``redis-server`` and PostgreSQL server binaries:
each round starts a broker of its own on the fleet's bridge and three hosts running
``litestar workers run --process --workers 2`` (concurrency 10, stats every 2 s, orphan grace 3 s).
Per round and broker it measures:

- throughput: ``--jobs`` no-op jobs (each records its run in the broker) enqueued in batches, until all
  are complete;
- recovery: 300 one-second jobs, one host SIGKILLed once it runs ten of them, until the last of its
  running jobs has started again on another host.

Brokers alternate within each round; the table gives medians over the rounds. Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fleet.harness import FleetRun, new_keys
from tests.support.poll import wait_until


async def throughput(fleet: FleetRun, jobs: int) -> float:
    keys = new_keys(fleet, "bench", jobs)
    started = time.monotonic()
    await fleet.enqueue(keys)
    await fleet.wait_until_complete(keys, timeout=600)
    return jobs / (time.monotonic() - started)


async def recovery(fleet: FleetRun) -> float:
    victim = fleet.hosts[0]
    keys = new_keys(fleet, "kill", 300)
    await fleet.enqueue(keys, seconds=1.0, retries=3, timeout=600)

    async def victim_busy() -> bool:
        return sum(run.host == victim.name for run in await fleet.runs()) >= 10

    await wait_until(victim_busy, timeout=60, what="the victim host to run jobs")
    killed_at = time.time()
    victim.kill()
    await fleet.wait_until_complete(keys, timeout=120)
    runs = await fleet.runs()
    on_victim = {run.key for run in runs if run.host == victim.name}
    again = [run.started for run in runs if run.key in on_victim and run.host != victim.name]
    return max(again) - killed_at if again else float("nan")


async def one_round(broker: str, jobs: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as log_dir:
        async with FleetRun(broker, Path(log_dir)) as fleet:
            fleet.start_hosts()
            await fleet.wait_for_workers()
            rate = await throughput(fleet, jobs)
            return rate, await recovery(fleet)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--brokers", default="redis,postgres")
    args = parser.parse_args()
    brokers = args.brokers.split(",")
    results: dict[str, list[tuple[float, float]]] = {broker: [] for broker in brokers}
    for round_number in range(args.rounds):
        order = brokers if round_number % 2 == 0 else brokers[::-1]
        for broker in order:
            rate, recovered = await one_round(broker, args.jobs)
            results[broker].append((rate, recovered))
            print(f"round {round_number + 1} {broker}: {rate:,.0f} jobs/s, recovery {recovered:.1f} s")
    print(f"\nFleet: 3 hosts x `workers run --process --workers 2`, concurrency 10, N={args.jobs:,},")
    print(f"{args.rounds} rounds, medians\n")
    print("| broker | jobs/s | recovery after SIGKILL of a host (s) |")
    print("| --- | ---: | ---: |")
    for broker, rows in results.items():
        rate = statistics.median(row[0] for row in rows)
        recovered = statistics.median(row[1] for row in rows)
        print(f"| {broker} | {rate:,.0f} | {recovered:.1f} |")
    if len(brokers) == 2:
        rates = [statistics.median(row[0] for row in results[broker]) for broker in brokers]
        print(f"\n{brokers[0]} / {brokers[1]} throughput: {rates[0] / rates[1]:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
