"""A Redis primary, one replica and three sentinels of the test's own, on free loopback ports.

``SentinelSet.start()`` starts them from the Debian ``redis-server`` binary (sentinels run as
``redis-server <conf> --sentinel``) and waits until every sentinel knows the primary, the replica and the
two other sentinels; ``stop()`` ends every process it started.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import redis

from tests.support.poll import wait_until_sync
from tests.support.procs import free_port
from tests.support.redis_server import PrivateRedis

__all__ = ("SERVICE", "SentinelSet")

SERVICE = "mymaster"


class SentinelSet:
    """Primary + replica + three sentinels (quorum 2, a primary is down after 1 s without answers)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.primary = PrivateRedis(directory / "primary")
        self.replica = PrivateRedis(directory / "replica")
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def dsn(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            pytest.fail("redis-server is not installed: apt-get install redis-server")
        for server in (self.primary, self.replica):
            server.dir.mkdir(parents=True, exist_ok=True)
        self.primary.start()
        self.replica.extra_args = ["--replicaof", "127.0.0.1", str(self.primary.port)]
        self.replica.start()
        for index, port in enumerate(self.sentinel_ports):
            config = self.directory / f"sentinel-{index}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.directory}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            self.sentinels.append(
                subprocess.Popen([binary, str(config), "--sentinel"], stdout=subprocess.DEVNULL)
            )
        wait_until_sync(self._settled, timeout=30, what="the sentinels to know the replica and each other")

    def _settled(self) -> bool:
        for port in self.sentinel_ports:
            client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
            try:
                replicas = client.sentinel_slaves(SERVICE)  # type: ignore[no-untyped-call]
                others = client.sentinel_sentinels(SERVICE)  # type: ignore[no-untyped-call]
            except redis.RedisError:
                return False
            finally:
                client.close()
            if len(replicas) < 1 or len(others) < 2:
                return False
        return self.primary_port() == self.primary.port

    def primary_port(self) -> int | None:
        """The port the first answering sentinel names as the primary's."""
        for port in self.sentinel_ports:
            client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
            try:
                address = client.sentinel_get_master_addr_by_name(SERVICE)  # type: ignore[no-untyped-call]
            except redis.RedisError:
                continue
            finally:
                client.close()
            if address:
                return int(address[1])
        return None

    def stop(self) -> None:
        for process in self.sentinels:
            process.terminate()
        for process in self.sentinels:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self.sentinels = []
        for server in (self.primary, self.replica):
            if server.process is not None and server.process.poll() is None:
                server.stop()
            server.process = None
