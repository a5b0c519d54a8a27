"""Brokers of a fleet test's own, listening on the fleet's bridge address as well as on 127.0.0.1.

The system Redis and PostgreSQL listen on 127.0.0.1 only, which a network namespace cannot reach. So a
fleet starts its own: ``FleetRedis`` (``redis-server``) and ``FleetPostgres`` (a throwaway cluster made
with ``initdb`` and run with ``pg_ctl`` as the ``postgres`` OS user, trust auth, fsync off), each on a
free port, in a temporary directory that ``stop()`` removes.
"""

from __future__ import annotations

import contextlib
import glob
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from tests.support.poll import wait_until_sync
from tests.support.procs import free_port

__all__ = ("FleetPostgres", "FleetRedis", "postgres_bin")


def _accepts(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.2):
            return True
    except OSError:
        return False


class FleetRedis:
    """A redis-server bound to ``127.0.0.1`` and ``address`` (the fleet's bridge)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="lsq-fleet-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, host: str = "127.0.0.1") -> str:
        """The DSN from the root namespace (default) or, with the bridge address, from a fleet host."""
        return f"redis://{host}:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        addresses = sorted({"127.0.0.1", self.address})
        args = ["--port", str(self.port), "--bind", *addresses, "--protected-mode", "no"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.dir), "--maxclients", "2000"]
        self.process = subprocess.Popen([binary, *args], stdout=subprocess.DEVNULL)
        wait_until_sync(
            lambda: _accepts(self.address, self.port), timeout=10, what=f"fleet Redis on {self.port}"
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None
        shutil.rmtree(self.dir, ignore_errors=True)


def postgres_bin() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` (Debian's PostgreSQL server binaries)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin")
    return Path(found[-1])


class FleetPostgres:
    """A PostgreSQL cluster of the fleet's own, listening on ``127.0.0.1`` and ``address``."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="lsq-fleet-pg-"))
        self.data = self.dir / "data"
        self.started = False

    def url(self, host: str = "127.0.0.1") -> str:
        """The DSN from the root namespace (default) or, with the bridge address, from a fleet host."""
        return f"postgresql://postgres@{host}:{self.port}/postgres"

    def _as_postgres(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            check=True,
            capture_output=True,
            timeout=timeout,
        )

    def start(self) -> None:
        shutil.chown(self.dir, "postgres", "postgres")
        binaries = postgres_bin()
        self._as_postgres(
            str(binaries / "initdb"), "--no-sync", "-A", "trust", "-U", "postgres", "-E", "UTF8",
            "-D", str(self.data),
        )  # fmt: skip
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write("host all all 0.0.0.0/0 trust\n")
        options = (
            f"-c listen_addresses='{','.join(sorted({'127.0.0.1', self.address}))}' -p {self.port} "
            f"-c unix_socket_directories='{self.dir}' -c max_connections=300 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._as_postgres(
            str(binaries / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), "-o", options,
            "-w", "start",
        )  # fmt: skip
        self.started = True
        wait_until_sync(
            lambda: _accepts(self.address, self.port), timeout=20, what=f"fleet PostgreSQL on {self.port}"
        )

    def stop(self) -> None:
        if self.started:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self._as_postgres(
                    str(postgres_bin() / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"
                )
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)
