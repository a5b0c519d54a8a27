"""Start the CLI in real subprocesses and inspect processes through /proc."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.support.poll import wait_until

ROOT = Path(__file__).resolve().parents[2]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class CliProcess:
    """A running ``python -m litestar …`` process whose output goes to a log file."""

    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def send(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def worker_pids(self) -> list[int]:
        """The worker child processes (multiprocessing's spawn children, not its resource tracker)."""
        return [pid for pid in children_of(self.pid) if "spawn_main" in cmdline(pid)]

    async def wait_exit(self, timeout: float) -> int:
        try:
            await wait_until(
                lambda: self.popen.poll() is not None, timeout=timeout, what=f"process {self.pid} to exit"
            )
        except AssertionError as exc:
            # PYTHONFAULTHANDLER=1 (see app_env) makes SIGABRT print every thread's stack to the log.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGABRT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=2)
            raise AssertionError(f"{exc}; its output:\n{self.log()}") from None
        return self.popen.returncode


def start_cli(app: str, args: list[str], env: Mapping[str, str], log_path: Path) -> CliProcess:
    """Start ``python -m litestar --app <app> <args>`` in its own session (so tests can clean up the tree)."""
    with log_path.open("wb") as log_file:
        popen = subprocess.Popen(
            [sys.executable, "-m", "litestar", "--app", app, *args],
            cwd=ROOT,
            env=dict(env),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return CliProcess(popen, log_path)


def run_cli(
    app: str, args: list[str], env: Mapping[str, str], timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "litestar", "--app", app, *args],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may contain spaces; everything after its closing parenthesis is split.
    return text[text.rindex(")") + 2 :].split()


def is_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def children_of(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[1]) == pid and fields[0] not in ("Z", "X"):
                children.append(int(entry.name))
    return sorted(children)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time ``pid`` has used so far."""
    fields = _stat_fields(pid)
    assert fields is not None, f"process {pid} is gone"
    # After the command name: state is field 3, utime field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kill_session(process: CliProcess) -> None:
    """SIGKILL the process and everything it started (they share its session's process group)."""
    # Children outlive a dead parent (they are re-parented), so the whole process group is killed.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.popen.wait(timeout=10)


def app_env_for_test(queue_name: str, redis_url: str) -> dict[str, str]:
    """This process's environment for a test app run by the CLI: the test's queue on Redis, unbuffered."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TEST_", "LITESTAR_"))}
    env.update(
        TEST_QUEUE=queue_name,
        REDIS_URL=redis_url,
        PYTHONUNBUFFERED="1",
        PYTHONFAULTHANDLER="1",
        LITESTAR_QUIET_CONSOLE="1",
    )
    return env


def cli_processes(log_dir: Path, default_app: str) -> Iterator[Callable[..., CliProcess]]:
    """A fixture body: yields ``start(args, env, app=default_app)``; kills what is still running after."""
    started: list[CliProcess] = []

    def start(args: list[str], env: dict[str, str], app: str = default_app) -> CliProcess:
        process = start_cli(app, args, env, log_dir / f"cli-{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        kill_session(process)
