"""The differences ``docs/migrating.rst`` lists, each as the migrating user meets it, and the guide itself:
every difference it lists names the test that backs it, and that test exists."""

from __future__ import annotations

import importlib
import os
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar

import litestar_saq
from litestar_saq import CronJob, QueueConfig, QueueNotFoundError, SAQConfig, SAQConfigError, SAQPlugin
from litestar_saq.brokers import queue_from_config
from litestar_saq.testing import running_app
from tests.support.procs import run_cli

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "migrating.rst"
TESTED_BY = re.compile(r"^ *\.\. tested by: (\S+)::(\w+)$", re.MULTILINE)


def test_every_difference_in_the_guide_names_an_existing_test() -> None:
    text = GUIDE.read_text()
    section = text.split("From upstream litestar-saq")[1].split("From raw SAQ")[0]
    differences = section.split("\n- **")[1:]
    assert len(differences) >= 15
    for difference in differences:
        references = TESTED_BY.findall(difference)
        assert references, f"no '.. tested by:' line for: {difference[:60]}"
        for path, test_name in references:
            module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
            assert callable(getattr(module, test_name, None)), f"{path}::{test_name} does not exist"


async def noop(ctx: dict[str, Any]) -> None:
    return None


def test_upstream_internal_modules_are_not_provided_import_from_the_package() -> None:
    for internal in ("litestar_saq.base", "litestar_saq.decorators"):
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(internal)
    assert litestar_saq.CronJob and litestar_saq.Job and litestar_saq.Worker and litestar_saq.monitored_job


def test_cron_job_meta_warns_it_has_no_effect() -> None:
    with pytest.warns(DeprecationWarning, match=r"CronJob\(meta=\.\.\.\).*no effect"):
        cron_job = CronJob(function=noop, cron="* * * * *", meta={"owner": "ops"})
    assert "meta" not in repr(cron_job.to_saq(noop))


def test_a_psycopg_pool_as_broker_instance_is_refused_naming_what_to_give() -> None:
    class AsyncConnectionPool:  # what psycopg_pool gives, without importing psycopg
        pass

    queue_config = QueueConfig(name="pg", broker_instance=AsyncConnectionPool())
    with pytest.raises(
        SAQConfigError, match=r"AsyncConnectionPool is not supported.*asyncpg\.Pool or a SAQ Queue"
    ):
        queue_from_config(queue_config, SAQConfig(queue_configs=[queue_config]))


def test_shutdown_grace_period_defaults_to_10_s_and_none_keeps_upstreams() -> None:
    assert QueueConfig(dsn="memory://", separate_process=False).shutdown_grace_period_s == 10
    queue_config = QueueConfig(dsn="memory://", separate_process=False, shutdown_grace_period_s=None)
    assert queue_config.shutdown_grace_period_s is None


def plugin_with(name: str) -> SAQPlugin:
    return SAQPlugin(
        SAQConfig(queue_configs=[QueueConfig(name=name, dsn="memory://", separate_process=False)])
    )


async def test_plugin_get_queue_and_task_queues_queues_work_while_the_app_runs() -> None:
    plugin = plugin_with("samples")
    with pytest.raises(QueueNotFoundError, match="has the app started"):
        plugin.get_queue("samples")
    async with running_app(Litestar(plugins=[plugin])):
        queue = plugin.get_queue("samples")
        assert plugin.get_queues().get("samples") is queue
        assert dict(plugin.task_queues.queues) == {"samples": queue}
        with pytest.raises(TypeError):
            plugin.task_queues.queues["other"] = queue  # type: ignore[index]


async def test_an_unknown_queue_is_still_an_improperly_configured_exception() -> None:
    from litestar.exceptions import ImproperlyConfiguredException

    plugin = plugin_with("samples")
    async with running_app(Litestar(plugins=[plugin])):
        with pytest.raises(
            ImproperlyConfiguredException, match="no queue named 'nope'; known queues: 'samples'"
        ):
            plugin.task_queues.get("nope")


def test_plain_def_hooks_are_refused_naming_the_hook() -> None:
    def sync_hook(ctx: dict[str, Any]) -> None:
        return None

    with pytest.raises(SAQConfigError, match=r"startup='.*sync_hook' is a plain 'def'"):
        QueueConfig(dsn="memory://", separate_process=False, startup=[sync_hook])


def test_queues_option_may_be_repeated_as_upstreams() -> None:
    queue_name = f"compat-{uuid.uuid4().hex[:8]}"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TEST_", "LITESTAR_"))}
    env.update(TEST_QUEUE=queue_name, LITESTAR_QUIET_CONSOLE="1")
    app = "tests.workers.apps.workers_app:app"
    # Repeated: both names count, so the unknown first one is reported (it used to be dropped).
    result = run_cli(app, ["workers", "run", "--queues", "nope", "--queues", queue_name], env)
    assert result.returncode == 2
    assert "unknown queue(s) 'nope'" in result.stderr


def test_the_typing_module_has_upstreams_flags() -> None:
    from litestar_saq.typing import OPENTELEMETRY_INSTALLED, STRUCTLOG_INSTALLED

    assert isinstance(OPENTELEMETRY_INSTALLED, bool) and isinstance(STRUCTLOG_INSTALLED, bool)
    assert not hasattr(importlib.import_module("litestar_saq.typing"), "Span")  # import from opentelemetry
