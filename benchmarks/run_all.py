"""Run every benchmark and write ``docs/benchmark-results.md`` and ``docs/benchmarks.png``.

    python benchmarks/run_all.py [--quick]

Runs, each as a subprocess of its own and one after the other:

* R1 ``bench_worker.py``: plugin worker vs raw SAQ worker draining no-op jobs from Redis;
* R2 ``bench_postgres.py``: ``AsyncpgQueue`` vs SAQ's psycopg ``PostgresQueue`` on one PostgreSQL;
* R3 ``bench_http.py``: req/s of a handler that enqueues one job vs the same handler without it;
* latency ``bench_latency.py``: enqueue-to-start p50/p99 on an idle worker, Redis and PostgreSQL;
* peers ``peers.py``: our queues beside SAQ's (Redis, psycopg), streaq, arq and pgqueuer: drain,
  enqueue one by one, bulk enqueue, enqueue→start p50/p99, PostgreSQL commits per job;
* memory ``bench_memory.py``: one worker draining no-op jobs from ``memory://``.

Each prints a Markdown table whose figures are ratios measured side by side in the same run. The
results file gets the date, the machine (CPU, cores, load average before and after each benchmark),
Python and package versions, and every table as printed. A benchmark that fails is recorded with its
exit code and the end of its stderr; the others still run. ``--quick`` uses small N (a few minutes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DOCS = ROOT / "docs"
PACKAGES = ("litestar-saq", "saq", "litestar", "redis", "hiredis", "asyncpg", "psycopg", "uvicorn")
PEER_PACKAGES = ("pgqueuer", "streaq")
PEERS_TITLE = "Peers — our queues beside SAQ, streaq, arq and pgqueuer"
MEMORY_TITLE = "Memory broker — one worker draining memory://"
OURS = {"redis": "our RedisQueue + PluginWorker", "postgres": "our AsyncpgQueue + PluginWorker"}
"""What the plugin runs on each broker in peers.py's table (peer_systems.OURS_*); every system there
whose name does not start with "our " is a peer."""


@dataclass
class Run:
    key: str
    title: str
    script: str
    args: list[str]
    timeout: float
    json_out: bool = False
    stdout: str = ""
    stderr: str = ""
    returncode: int | None = None
    seconds: float = 0.0
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def plan(quick: bool) -> list[Run]:
    if quick:
        return [
            Run("r1", "R1 — plugin worker vs raw SAQ worker (Redis, drain)", "bench_worker.py",
                ["--jobs", "1000", "--concurrency", "10", "--rounds", "3"], 300),
            Run("r2", "R2 — AsyncpgQueue vs SAQ PostgresQueue (psycopg)", "bench_postgres.py",
                ["--jobs", "500"], 600),
            Run("r3", "R3 — HTTP req/s with vs without one enqueue", "bench_http.py",
                ["--duration", "3", "--rounds", "2", "--connections", "50"], 600, json_out=True),
            Run("latency", "Enqueue→start latency, idle worker", "bench_latency.py",
                ["--jobs", "100", "--rounds", "2"], 300, json_out=True),
            Run("peers", PEERS_TITLE, "peers.py",
                ["--jobs", "500", "--latency-jobs", "50", "--rounds", "2"], 900, json_out=True),
            Run("memory", MEMORY_TITLE, "bench_memory.py", ["--jobs", "5000", "--rounds", "2"], 300),
        ]  # fmt: skip
    return [
        Run("r1", "R1 — plugin worker vs raw SAQ worker (Redis, drain)", "bench_worker.py",
            ["--jobs", "5000", "--concurrency", "10", "--rounds", "5"], 900),
        Run("r2", "R2 — AsyncpgQueue vs SAQ PostgresQueue (psycopg)", "bench_postgres.py",
            ["--jobs", "2000"], 1200),
        Run("r3", "R3 — HTTP req/s with vs without one enqueue", "bench_http.py",
            ["--duration", "8", "--rounds", "3", "--connections", "50"], 900, json_out=True),
        Run("latency", "Enqueue→start latency, idle worker", "bench_latency.py",
            ["--jobs", "500", "--rounds", "5"], 900, json_out=True),
        Run("peers", PEERS_TITLE, "peers.py",
            ["--jobs", "3000", "--latency-jobs", "300", "--rounds", "3"], 3600, json_out=True),
        Run("memory", MEMORY_TITLE, "bench_memory.py", ["--jobs", "20000", "--rounds", "3"], 600),
    ]  # fmt: skip


def execute(run: Run, workdir: Path) -> None:
    command = [sys.executable, str(HERE / run.script), *run.args]
    json_path = workdir / f"{run.key}.json"
    if run.json_out:
        command += ["--json", str(json_path)]
    print(f"== {run.title}: {' '.join(command[1:])}", flush=True)
    run.load_before = os.getloadavg()
    started = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=run.timeout, cwd=ROOT)
        run.stdout, run.stderr, run.returncode = done.stdout, done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        run.stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        run.stderr = f"timed out after {run.timeout:.0f} s"
        run.returncode = -1
    run.seconds = time.monotonic() - started
    run.load_after = os.getloadavg()
    if run.json_out and json_path.exists():
        run.data = json.loads(json_path.read_text())
    status = "ok" if run.ok else f"FAILED (exit {run.returncode})"
    print(f"   {status} in {run.seconds:.0f} s", flush=True)
    if not run.ok:
        print(run.stderr[-2000:], file=sys.stderr)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def arq_version() -> str:
    """arq's version in its own interpreter (``.venv-arq``, see benchmarks/arq_peer.py)."""
    python = Path(os.environ.get("ARQ_PYTHON", ROOT / ".venv-arq/bin/python"))
    if not python.exists():
        return "not installed"
    return tool_version([str(python), "-c", "import importlib.metadata as m; print(m.version('arq'))"])


def tool_version(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0] if text else "unknown"


# ------------------------------------------------------------------------------------- ratios for the chart


def ratios(run: Run) -> list[tuple[str, float, str]]:
    """(label, ratio, kind) for the chart; kind is "higher" or "lower" (which way is better)."""
    if not run.ok:
        return []
    found: list[tuple[str, float, str]] = []
    if run.key == "r1":
        match = re.search(r"\|\s*ratio plugin/raw\s*\|\s*([\d.]+)", run.stdout)
        if match:
            found.append(("R1 drain: plugin / raw SAQ worker (Redis)", float(match.group(1)), "higher"))
    elif run.key == "r2":
        wanted = {
            "enqueue, one by one": ("R2 enqueue: asyncpg / psycopg", "higher"),
            "drain, concurrency 1 ": ("R2 drain c=1: asyncpg / psycopg", "higher"),
            "drain, concurrency 10": ("R2 drain c=10: asyncpg / psycopg", "higher"),
            "statements per job": ("R2 statements/job: asyncpg / psycopg", "lower"),
            "commits per job": ("R2 commits/job: asyncpg / psycopg", "lower"),
            "enqueue→start p50": ("R2 latency p50: asyncpg / psycopg", "lower"),
        }
        for line in run.stdout.splitlines():
            for prefix, (label, kind) in wanted.items():
                if line.startswith(f"| {prefix}"):
                    match = re.search(r"\|\s*([\d.]+)x\s*\|\s*$", line)
                    if match:
                        found.append((label, float(match.group(1)), kind))
    elif run.key == "r3":
        for broker, result in run.data.get("results", {}).items():
            name = "Redis" if broker == "redis" else "PostgreSQL"
            found.append((f"R3 req/s with / without enqueue ({name})", result["ratio"], "higher"))
            if "cpu_ratio" in result:  # the server's CPU per request, without / with: the load-proof figure
                found.append(
                    (f"R3 server CPU/request without / with enqueue ({name})", result["cpu_ratio"], "higher")
                )
    elif run.key == "peers":
        found += peer_ratios(run.data.get("medians", {}), run.data.get("brokers", {}))
    elif run.key == "memory":
        match = re.search(r"\|\s*plugin worker, MemoryQueue\s*\|\s*([\d,]+)", run.stdout)
        if match:
            rate = float(match.group(1).replace(",", ""))
            found.append(("memory drain: plugin worker / 10,000 jobs/s target", rate / 10_000, "higher"))
    elif run.key == "latency":
        values = run.data.get("ratios", {})
        for key, label in (
            ("redis_p50", "latency p50: plugin / SAQ (Redis)"),
            ("redis_p99", "latency p99: plugin / SAQ (Redis)"),
            ("pg_p50", "latency p50: asyncpg / psycopg (PG)"),
            ("pg_p99", "latency p99: asyncpg / psycopg (PG)"),
        ):
            if key in values:
                found.append((label, values[key], "lower"))
    return found


def peer_ratios(
    medians: dict[str, dict[str, float]], brokers: dict[str, str]
) -> list[tuple[str, float, str]]:
    """Ours / each peer on the same broker: drain, enqueue, bulk and p99 latency; commits per job."""
    found: list[tuple[str, float, str]] = []
    for peer, broker in brokers.items():
        ours = medians.get(OURS[broker])
        if peer.startswith("our ") or ours is None:
            continue
        theirs = medians[peer]
        for metric, label, kind in (
            ("drain", "drain", "higher"),
            ("enqueue", "enqueue one by one", "higher"),
            ("bulk", "bulk enqueue", "higher"),
            ("p99", "p99 enqueue→start", "lower"),
            ("commits", "commits/job", "lower"),
        ):
            if metric in ours and theirs.get(metric):
                label_text = f"peers {label}: {OURS[broker]} / {peer}"
                found.append((label_text, ours[metric] / theirs[metric], kind))
    return found


def chart(bars: list[tuple[str, float, str]], path: Path, subtitle: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [
        ("higher", "throughput ratios (higher is better)"),
        ("lower", "cost / latency ratios (lower is better)"),
    ]
    counts = [max(1, sum(1 for _, _, k in bars if k == kind)) for kind, _ in groups]
    fig, axes = plt.subplots(
        2, 1, figsize=(12, 0.34 * sum(counts) + 3), gridspec_kw={"height_ratios": counts}
    )  # one column, so that long labels keep their room
    for axis, (kind, title) in zip(axes, groups, strict=True):
        rows = [(label, value) for label, value, k in bars if k == kind]
        if not rows:
            axis.set_visible(False)
            continue
        labels = [label for label, _ in rows][::-1]
        values = [value for _, value in rows][::-1]
        good = [(v >= 1) if kind == "higher" else (v <= 1) for v in values]
        # R3 is the cost of an enqueue inside a request, not ours vs someone else's: no good/bad colour
        colors = [
            "#1565c0" if label.startswith("R3") else ("#2e7d32" if g else "#c62828")
            for label, g in zip(labels, good, strict=True)
        ]
        axis.barh(labels, values, color=colors)
        axis.axvline(1.0, color="black", linewidth=1, linestyle="--")
        for y, value in enumerate(values):
            axis.text(value, y, f" {value:.2f}x", va="center", fontsize=9)
        axis.set_title(title)
        axis.set_xlim(0, max(values) * 1.25)
        axis.tick_params(axis="y", labelsize=9)
    fig.suptitle(f"litestar-saq benchmarks: ratios measured side by side in one run\n{subtitle}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------ report


def table_part(stdout: str) -> str:
    """The benchmark's output without its progress lines."""
    lines = [line for line in stdout.splitlines() if not re.fullmatch(r"\w+: done", line.strip())]
    return "\n".join(lines).strip()


def report(runs: list[Run], quick: bool, started: dt.datetime, bars: list[tuple[str, float, str]]) -> str:
    cores = os.cpu_count()
    out = [
        "# Benchmark results",
        "",
        "Generated by `python benchmarks/run_all.py"
        + (" --quick" if quick else "")
        + "`; do not edit by hand.",
        "Every figure below is a ratio of two systems measured side by side in the same run, on the same",
        "machine and brokers. Absolute rates move from run to run (and with the machine's load); compare",
        "the ratios. See `benchmarks/README.md` for what each benchmark measures.",
        "",
        "## Machine",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC",
        f"- CPU: {cpu_model()}, {cores} cores ({platform.machine()}), "
        f"{platform.system()} {platform.release()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()})",
        "- packages: " + ", ".join(f"{name} {version(name)}" for name in PACKAGES),
        "- peers: "
        + ", ".join(f"{name} {version(name)}" for name in PEER_PACKAGES)
        + f", arq {arq_version()}",
        f"- brokers: {tool_version(['redis-server', '--version'])}; "
        f"{tool_version(['psql', '--version'])}; load generator: {tool_version(['wrk', '--version'])}",
        "- load average (1/5/15 min) before → after each benchmark: "
        + "; ".join(
            f"{run.key} {'/'.join(f'{x:.2f}' for x in run.load_before)} → "
            f"{'/'.join(f'{x:.2f}' for x in run.load_after)}"
            for run in runs
        ),
        "- the machine was shared with other work while this ran (see the load averages); the benchmarks",
        "  interleave their two sides round by round where they can and report medians",
        "",
        "## Summary of ratios",
        "",
        "| figure | ratio | better when |",
        "| --- | ---: | --- |",
    ]
    out += [f"| {label} | {value:.2f}x | {kind} |" for label, value, kind in bars]
    out += ["", "![benchmark ratios](benchmarks.png)", ""]
    for run in runs:
        out += [
            f"## {run.title}",
            "",
            f"`python benchmarks/{run.script} {' '.join(run.args)}` ({run.seconds:.0f} s)",
            "",
        ]
        if run.key == "r2":
            out += [
                "R2 runs the asyncpg side first, then the psycopg side (the script does not interleave).",
                "",
            ]
        if run.ok:
            out += [table_part(run.stdout), ""]
        else:
            out += [
                f"**FAILED** (exit code {run.returncode}). Output, then the end of stderr:",
                "",
                "```",
                run.stdout.strip()[-3000:],
                "---",
                run.stderr.strip()[-3000:],
                "```",
                "",
            ]
    return "\n".join(out).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small N: the whole suite in a few minutes")
    parser.add_argument("--only", help="comma-separated subset of: r1,r2,r3,latency,peers,memory")
    parser.add_argument("--output", default=str(DOCS / "benchmark-results.md"))
    parser.add_argument("--chart", default=str(DOCS / "benchmarks.png"))
    args = parser.parse_args()
    started = dt.datetime.now(dt.timezone.utc)
    runs = plan(args.quick)
    if args.only:
        wanted = set(args.only.split(","))
        runs = [run for run in runs if run.key in wanted]
    with tempfile.TemporaryDirectory() as workdir:
        for run in runs:
            execute(run, Path(workdir))
    bars = [bar for run in runs for bar in ratios(run)]
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report(runs, args.quick, started, bars))
    print(f"wrote {output}")
    if bars:
        load = statistics.mean(run.load_before[0] for run in runs)
        subtitle = (
            f"{started:%Y-%m-%d}, {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"mean 1-min load {load:.1f}" + (" (--quick)" if args.quick else "")
        )
        chart(bars, Path(args.chart), subtitle)
        print(f"wrote {args.chart}")
    failed = [run.key for run in runs if not run.ok]
    if failed:
        print(f"failed: {', '.join(failed)} (recorded in {output})", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
