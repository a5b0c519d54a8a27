"""A pgbouncer of the test's own, in transaction pooling mode, in front of the test PostgreSQL.

``PgBouncer.start()`` writes a config into a temporary directory, starts ``pgbouncer`` on a free
loopback port (as the ``postgres`` user when run as root: pgbouncer refuses to run as root) and waits
until it answers. ``shared_pgbouncer()`` is one instance per test process, stopped at exit, for the
contract suite's ``asyncpg-pgbouncer`` backend.
"""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.poll import wait_until_sync
from tests.support.procs import free_port

__all__ = ("PgBouncer", "bouncer_dsn", "shared_pgbouncer")

_shared: list[PgBouncer] = []


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or next(
        (path for path in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.path.exists(path)), None
    )


class PgBouncer:
    """A pgbouncer (transaction pooling) for ``database_url``'s database, on ``127.0.0.1:<port>``."""

    def __init__(self, database_url: str, directory: Path, pool_size: int = 20) -> None:
        self.target = urlsplit(database_url)
        self.database = self.target.path.lstrip("/") or "postgres"
        self.user = self.target.username or "postgres"
        self.port = free_port()
        self.directory = directory
        self.pool_size = pool_size
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def start(self) -> None:
        binary = pgbouncer_binary()
        if binary is None:
            pytest.fail("pgbouncer is not installed: apt-get install pgbouncer (scripts/test installs it)")
        config = self.directory / "pgbouncer.ini"
        (self.directory / "userlist.txt").write_text(f'"{self.user}" ""\n')
        config.write_text(
            "[databases]\n"
            f"{self.database} = host={self.target.hostname or '127.0.0.1'} "
            f"port={self.target.port or 5432} dbname={self.database}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.directory / 'userlist.txt'}\n"
            f"pool_mode = transaction\ndefault_pool_size = {self.pool_size}\nmax_client_conn = 500\n"
            "ignore_startup_parameters = extra_float_digits\n"
            f"logfile = {self.directory / 'pgbouncer.log'}\n"
        )
        command = [binary, str(config)]
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.directory, account.pw_uid, account.pw_gid)
            for path in self.directory.iterdir():
                os.chown(path, account.pw_uid, account.pw_gid)
            command = [binary, "-u", "postgres", str(config)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until_sync(self._answers, timeout=10, what=f"pgbouncer on port {self.port} to start")

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            log = self.directory / "pgbouncer.log"
            raise RuntimeError(f"pgbouncer exited: {log.read_text() if log.exists() else ''}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None


def shared_pgbouncer(database_url: str) -> PgBouncer:
    """This test process's pgbouncer in front of ``database_url``, started on first use."""
    if not _shared:
        directory = Path(tempfile.mkdtemp(prefix="saq-pgbouncer-"))
        bouncer = PgBouncer(database_url, directory)
        bouncer.start()
        atexit.register(_stop_shared, bouncer, directory)
        _shared.append(bouncer)
    return _shared[0]


def _stop_shared(bouncer: PgBouncer, directory: Path) -> None:
    bouncer.stop()
    shutil.rmtree(directory, ignore_errors=True)


def bouncer_dsn(database_url: str) -> str:
    """The DSN of this process's pgbouncer in front of ``database_url``."""
    return shared_pgbouncer(database_url).url
