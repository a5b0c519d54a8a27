"""Upstream litestar-saq's sdist, fetched with pip once and cached, and its example apps run from it.

Our distribution has the same name, so upstream is never installed: pip downloads its sdist (pinned by
version and hash) into ``$XDG_CACHE_HOME/litestar-saq-upstream`` (``~/.cache`` by default, or
``LITESTAR_SAQ_UPSTREAM_CACHE``), and the examples run from the unpacked tree, importing *this* package.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import httpx
import pytest

from tests.support.poll import wait_until
from tests.support.procs import CliProcess, free_port, kill_session

UPSTREAM_VERSION = "0.8.0"
UPSTREAM_SHA256 = "4d6b6bd6e8c76a6dbf8537f51f71180a78ff7ba4a09294fbb62965653bb04a31"
PYPI_HOST = "pypi.org"


def cache_dir() -> Path:
    if "LITESTAR_SAQ_UPSTREAM_CACHE" in os.environ:
        return Path(os.environ["LITESTAR_SAQ_UPSTREAM_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "litestar-saq-upstream"


def upstream_tree() -> Path:
    """The unpacked sdist of upstream ``litestar-saq==UPSTREAM_VERSION``; downloads it on first use.

    Skips the test only when PyPI cannot be reached (offline); any other pip failure fails it.
    """
    tree = cache_dir() / f"litestar_saq-{UPSTREAM_VERSION}"
    if (tree / "examples" / "basic.py").is_file():
        return tree
    cache_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir()) as scratch:
        archive = _download(Path(scratch))
        with tarfile.open(archive) as sdist:
            sdist.extractall(scratch, filter="data")
        with contextlib.suppress(OSError):  # another test process unpacked it first: use theirs
            os.rename(Path(scratch) / tree.name, tree)
    return tree


def _download(into: Path) -> Path:
    requirement = into / "requirement.txt"
    requirement.write_text(f"litestar-saq=={UPSTREAM_VERSION} --hash=sha256:{UPSTREAM_SHA256}\n")
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"),
            *("--require-hashes", "-r", str(requirement), "-d", str(into)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    archives = list(into.glob("litestar_saq-*.tar.gz"))
    if result.returncode == 0 and archives:
        return archives[0]
    if not _pypi_reachable():
        pytest.skip(f"offline: cannot reach {PYPI_HOST} to download upstream litestar-saq {UPSTREAM_VERSION}")
    raise AssertionError(f"pip could not download upstream litestar-saq {UPSTREAM_VERSION}:\n{result.stderr}")


def _pypi_reachable() -> bool:
    try:
        socket.create_connection((PYPI_HOST, 443), timeout=5).close()
    except OSError:
        return False
    return True


def example_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of an example app: ours, without anything that would pick another app."""
    env = {key: value for key, value in os.environ.items() if key not in ("LITESTAR_APP", "PYTHONPATH")}
    return {**env, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1", **(extra or {})}


@contextlib.asynccontextmanager
async def running_example(tree: Path, module: str, route: str, log_path: Path) -> AsyncIterator[str]:
    """Run ``litestar --app examples.<module>:app run`` in upstream's tree until ``route`` answers.

    Yields the app's base URL. On exit the server gets SIGINT (as a developer's Ctrl-C) and must stop with
    its worker processes; anything left is killed.
    """
    port = free_port()
    with log_path.open("wb") as log_file:
        popen = subprocess.Popen(
            [sys.executable, "-m", "litestar", "--app", f"examples.{module}:app", "run", "--port", str(port)],
            cwd=tree,
            env=example_env(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    process = CliProcess(popen, log_path)
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:

            async def route_answers() -> bool:
                if popen.poll() is not None:
                    raise AssertionError(f"examples/{module}.py exited early:\n{process.log()}")
                with contextlib.suppress(httpx.TransportError):
                    return (await client.get(route)).status_code == 200
                return False

            await wait_until(route_answers, timeout=60, what=f"GET {route} of examples/{module}.py to answer")
        yield base_url
        os.killpg(popen.pid, signal.SIGINT)
        assert await process.wait_exit(timeout=45) == 0, process.log()
    finally:
        if popen.poll() is None:
            kill_session(process)
