"""DSN passwords never show: not in logs, CLI output, the dashboard, its API or exception text."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from saq.job import Status

from litestar_saq import BrokerUnavailableError, QueueConfig, SAQConfig, SAQConfigError, SAQPlugin
from litestar_saq.brokers import queue_from_dsn
from litestar_saq.testing import running_app, wait_for_job
from tests.support.procs import run_cli
from tests.support.redis_server import PrivateRedis

SECRET = "s3cret-Pa55word"
APP = "tests.security.apps.secret_app:app"


@pytest.fixture
def password_redis(tmp_path: Path) -> Iterator[str]:
    server = PrivateRedis(tmp_path, extra_args=("--requirepass", SECRET))
    server.start()
    yield f"redis://:{SECRET}@127.0.0.1:{server.port}/0"
    server.stop()


@pytest.fixture
def secret_env(password_redis: str, queue_name: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "SECRET_REDIS_DSN": password_redis,
        "SECRET_PG_DSN": f"postgresql://postgres:{SECRET}@127.0.0.1:5432/test",
        "SECRET_REDIS_QUEUE": f"{queue_name}-r",
        "SECRET_PG_QUEUE": f"{queue_name}-p",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


async def test_password_in_no_log_page_api_or_cli_output(
    secret_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sys.modules.pop("tests.security.apps.secret_app", None)
    app = importlib.import_module("tests.security.apps.secret_app").app
    seen: list[str] = []
    async with running_app(app) as client:
        plugin = app.plugins.get(SAQPlugin)
        for name in (secret_env["SECRET_REDIS_QUEUE"], secret_env["SECRET_PG_QUEUE"]):
            queue = plugin.task_queues.get(name)
            seen.append(repr(queue))
            for task in ("ok", "boom"):
                job = await queue.enqueue(task)
                assert job is not None
                finished = await wait_for_job(queue, None, job.key)
                assert finished.status in (Status.COMPLETE, Status.FAILED)
                seen.append(str(finished.error))
                for path in (f"/saq/api/queues/{name}", f"/saq/api/queues/{name}/jobs/{job.key}"):
                    response = await client.get(path)
                    assert response.status_code == 200, path
                    seen.append(response.text)
        for path in ("/saq/", "/saq/ops", "/saq/api/queues", "/saq/api/workers", "/saq/health"):
            response = await client.get(path)
            assert response.status_code == 200, path
            seen.append(response.text)
    env = {**os.environ, **secret_env, "LITESTAR_QUIET_CONSOLE": "1"}
    for args in (["workers", "status"], ["workers", "status", "--json"]):
        result = run_cli(APP, args, env)
        assert result.returncode == 0, result.stderr
        seen += [result.stdout, result.stderr]
    seen += [record.getMessage() for record in caplog.records]
    seen += [str(record.exc_info[1]) for record in caplog.records if record.exc_info]
    leaks = [text[:300] for text in seen if SECRET in text]
    assert leaks == []
    assert any("***" in text or "127.0.0.1" in text for text in seen)


async def test_password_in_no_error_message() -> None:
    errors: list[str] = []
    unreachable = [f"redis://:{SECRET}@127.0.0.1:1/0", f"postgresql://postgres:{SECRET}@127.0.0.1:1/test"]
    for dsn in unreachable:
        queue = queue_from_dsn(dsn, name="leak")
        with pytest.raises(Exception) as excinfo:
            await queue.connect()
        errors.append(f"{excinfo.value!s} {excinfo.value!r} {excinfo.value.__cause__!s}")
        await queue.disconnect()
    redis_queue = queue_from_dsn(unreachable[0], name="leak")
    with pytest.raises(BrokerUnavailableError) as enqueue_error:
        await redis_queue.enqueue("ok")
    errors.append(str(enqueue_error.value))
    await redis_queue.disconnect()
    with pytest.raises(SAQConfigError) as config_error:
        SAQConfig(queue_configs=[QueueConfig(name="x", dsn=f"amqp://user:{SECRET}@host/")])
    errors.append(str(config_error.value))
    leaks = [error for error in errors if SECRET in error]
    assert leaks == []


def test_status_masks_query_passwords_and_multi_host_dsns(tmp_path: Path, queue_name: str) -> None:
    server = PrivateRedis(tmp_path, extra_args=("--requirepass", SECRET))
    server.start()
    try:
        env = {
            **os.environ,
            "LITESTAR_QUIET_CONSOLE": "1",
            # The password only in the query string, as redis-py and libpq both accept it.
            "SECRET_REDIS_DSN": f"redis://127.0.0.1:{server.port}/0?password={SECRET}",
            "SECRET_PG_DSN": f"postgresql://postgres@127.0.0.1:5432,127.0.0.1:5432/test?password={SECRET}",
            "SECRET_REDIS_QUEUE": f"{queue_name}-r",
            "SECRET_PG_QUEUE": f"{queue_name}-p",
        }
        for args in (["workers", "status"], ["workers", "status", "--json"]):
            result = run_cli(APP, args, env)
            assert result.returncode == 0, result.stderr
            assert SECRET not in result.stdout + result.stderr
            assert "Traceback" not in result.stderr
            assert "password=***" in result.stdout
            assert "127.0.0.1:5432,127.0.0.1:5432" in result.stdout
    finally:
        server.stop()
