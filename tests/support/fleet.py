"""Three (or N) "hosts" on this machine: network namespaces with a veth pair each onto one bridge.

``FleetNetwork`` makes a bridge ``lsqb<run>`` in the root namespace with ``10.x.y.1/24`` (a free /24 of
10.64-127.*) and, per host, a network namespace ``lsq<run>h<i>`` whose veth end has ``10.x.y.<10+i>``.
Brokers of the test's own listen on the bridge address (see ``fleet_servers``). A host's processes run
under ``ip netns exec <ns> unshare --uts --pid --fork --mount-proc --kill-child``: own network, own
hostname, own PID namespace; SIGKILL to that namespace's init kills the whole host, and taking its veth
down cuts it off from the brokers.

Where the sandbox forbids network namespaces (``ip netns add`` fails), the fleet falls back to hosts
with their own hostname and PID namespace only, on 127.0.0.1; cutting a host off then freezes it
(SIGSTOP to every process of its PID namespace) instead. ``FleetNetwork.mode`` says which ran; if even
``unshare --uts --pid`` is refused, ``FleetUnavailable`` says so (the tests fail with that message).
``FLEET_NO_NETNS=1`` forces the fallback. Names carry a random run id, so parallel test workers
never collide; ``close()`` removes everything.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import signal
import subprocess
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.poll import wait_until_sync
from tests.support.procs import ROOT, children_of, is_alive

__all__ = ("NETNS", "PIDNS_ONLY", "FleetHost", "FleetNetwork", "FleetUnavailable")

NETNS = "network namespaces + veth + UTS/PID namespaces"
PIDNS_ONLY = "UTS/PID namespaces only, on 127.0.0.1 (network namespaces refused)"


class FleetUnavailable(RuntimeError):
    """This sandbox allows neither network namespaces nor ``unshare --uts --pid``."""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=False)


def _ip(*args: str) -> None:
    result = _run("ip", *args)
    if result.returncode != 0:
        raise OSError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")


@dataclass
class FleetHost:
    """One host: a name (its hostname), an address, maybe a network namespace, and its processes."""

    name: str
    address: str
    namespace: str | None = None
    veth: str | None = None
    log_path: Path | None = None
    popen: subprocess.Popen[bytes] | None = None
    _init_pid: int | None = field(default=None, repr=False)

    def start(self, command: list[str], env: Mapping[str, str], log_path: Path) -> None:
        """Run ``command`` as the init of a new UTS + PID namespace (in this host's network namespace)."""
        prefix = ["ip", "netns", "exec", self.namespace] if self.namespace else []
        wrapped = [
            *prefix,
            "unshare", "--uts", "--pid", "--fork", "--mount-proc", "--kill-child",
            "sh", "-c", 'hostname "$0" && exec "$@"', self.name, *command,
        ]  # fmt: skip
        self.log_path = log_path
        with log_path.open("ab") as log_file:
            self.popen = subprocess.Popen(
                wrapped, cwd=ROOT, env=dict(env), stdout=log_file, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self._init_pid = None
        self._init_pid = wait_until_sync(self._find_init, timeout=10, what=f"host {self.name}'s init")

    def start_workers(self, app: str, env: Mapping[str, str], log_path: Path, workers: int = 2) -> None:
        """``litestar --app <app> workers run --process --workers <workers>`` on this host."""
        command = [sys.executable, "-m", "litestar", "--app", app, "workers", "run", "--process"]
        self.start([*command, "--workers", str(workers)], env, log_path)

    def _find_init(self) -> int | None:
        assert self.popen is not None
        children = children_of(self.popen.pid)
        return children[0] if children else None

    @property
    def init_pid(self) -> int:
        """The host's PID-namespace init (the supervisor), as the root namespace numbers it."""
        assert self._init_pid is not None, f"host {self.name} was not started"
        return self._init_pid

    def processes(self) -> list[int]:
        """Every process of this host's PID namespace (root-namespace pids)."""
        try:
            namespace = os.stat(f"/proc/{self.init_pid}/ns/pid").st_ino
        except FileNotFoundError:
            return []
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if os.stat(f"/proc/{entry.name}/ns/pid").st_ino == namespace:
                        found.append(int(entry.name))
        return found

    def kill(self) -> None:
        """SIGKILL the host's init: the kernel kills every process of its PID namespace with it."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.init_pid, signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(timeout=10)

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM the host's supervisor (a graceful stop) and return its exit status."""
        assert self.popen is not None
        os.kill(self.init_pid, signal.SIGTERM)
        return self.popen.wait(timeout=timeout)

    def cut(self) -> None:
        """Cut the host off from the brokers: its veth down, or (no network namespaces) freeze it."""
        if self.veth:
            _ip("link", "set", self.veth, "down")
        else:
            for pid in self.processes():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)

    def restore(self) -> None:
        """Undo :meth:`cut`."""
        if self.veth:
            _ip("link", "set", self.veth, "up")
        else:
            for pid in self.processes():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop_processes(self) -> None:
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)  # unshare; --kill-child takes its namespace along
        with contextlib.suppress(ProcessLookupError):
            if self._init_pid is not None and is_alive(self._init_pid):
                os.kill(self._init_pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)


class FleetNetwork:
    """The bridge and the hosts; use as a context manager (or call ``open()`` and ``close()``)."""

    def __init__(self, hosts: int = 3) -> None:
        self.run_id = uuid.uuid4().hex[:6]
        self.count = hosts
        self.bridge = f"lsqb{self.run_id}"
        self.hosts: list[FleetHost] = []
        self.mode = NETNS
        self.broker_address = "127.0.0.1"
        """Where the hosts reach the brokers: the bridge's address (127.0.0.1 without namespaces)."""
        self._made_bridge = False

    @property
    def veth_cuts(self) -> bool:
        """Whether cutting a host off takes its link down (else it freezes the host)."""
        return self.mode == NETNS

    def __enter__(self) -> FleetNetwork:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        try:
            if os.environ.get("FLEET_NO_NETNS"):  # to try the fallback where namespaces are allowed
                raise OSError("FLEET_NO_NETNS is set")
            self._open_namespaces()
        except OSError as error:
            self.close()
            self._open_pid_namespaces_only(error)

    def _open_namespaces(self) -> None:
        subnet = self._free_subnet()
        self.broker_address = str(subnet.network_address + 1)
        _ip("link", "add", self.bridge, "type", "bridge")
        self._made_bridge = True
        _ip("addr", "add", f"{self.broker_address}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for index in range(self.count):
            namespace, veth, peer = (f"lsq{self.run_id}{kind}{index}" for kind in "hvp")
            host = FleetHost(f"fleet-{self.run_id}-{index}", str(subnet.network_address + 10 + index))
            _ip("netns", "add", namespace)
            host.namespace = namespace
            self.hosts.append(host)
            _ip("link", "add", veth, "type", "veth", "peer", "name", peer)
            host.veth = veth
            _ip("link", "set", peer, "netns", namespace)
            _ip("link", "set", veth, "master", self.bridge, "up")
            _ip("-n", namespace, "addr", "add", f"{host.address}/24", "dev", peer)
            _ip("-n", namespace, "link", "set", peer, "up")
            _ip("-n", namespace, "link", "set", "lo", "up")

    def _open_pid_namespaces_only(self, refused: OSError) -> None:
        probe = _run("unshare", "--uts", "--pid", "--fork", "--mount-proc", "true")
        if probe.returncode != 0:
            raise FleetUnavailable(
                f"the fleet tests need network namespaces ({refused}) or at least "
                f"`unshare --uts --pid` ({probe.stderr.strip()}); this sandbox allows neither"
            )
        self.mode = PIDNS_ONLY
        self.broker_address = "127.0.0.1"
        self.hosts = [FleetHost(f"fleet-{self.run_id}-{i}", "127.0.0.1") for i in range(self.count)]

    @staticmethod
    def _free_subnet() -> ipaddress.IPv4Network:
        used = _run("ip", "-o", "-4", "addr", "show").stdout
        for _ in range(50):
            subnet = ipaddress.IPv4Network(f"10.{random.randint(64, 127)}.{random.randint(0, 255)}.0/24")
            if f" {str(subnet.network_address)[:-1]}" not in used:
                return subnet
        raise OSError("no free 10.64-127.x.0/24 subnet for the fleet bridge")

    def close(self) -> None:
        """Kill every host's processes, delete namespaces, veths and the bridge (idempotent)."""
        for host in self.hosts:
            host.stop_processes()
            if host.namespace:
                for pid in _run("ip", "netns", "pids", host.namespace).stdout.split():
                    with contextlib.suppress(ProcessLookupError, ValueError):
                        os.kill(int(pid), signal.SIGKILL)
                _run("ip", "netns", "del", host.namespace)  # takes the veth pair with it
            if host.veth:
                _run("ip", "link", "del", host.veth)
        if self._made_bridge:
            _run("ip", "link", "del", self.bridge)
            self._made_bridge = False
        self.hosts = []
