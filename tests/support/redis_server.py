"""A redis-server of the test's own, for tests that stop, restart or reconfigure their broker."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

from tests.support.poll import wait_until_sync
from tests.support.procs import free_port


class PrivateRedis:
    """A redis-server of this test's own, so restarting it disturbs no other test."""

    def __init__(self, tmp_path: Path, extra_args: tuple[str, ...] = ()) -> None:
        self.extra_args = list(extra_args)
        self.port = free_port()
        self.dir = tmp_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_until_sync(
            self._accepts_connections, timeout=10, what=f"redis-server on port {self.port} to start"
        )

    def _accepts_connections(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
