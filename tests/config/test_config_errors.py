"""Bad configuration fails early with a message that names the queue, the field and the value."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.exceptions import ImproperlyConfiguredException

from litestar_saq import CronJob, QueueConfig, SAQConfig, SAQConfigError, SAQPlugin
from tests.support import tasks


def make_app(**queue_options: Any) -> Litestar:
    queue_options.setdefault("dsn", "redis://127.0.0.1:6379/0")
    queue_config = QueueConfig(name="mail", **queue_options)
    return Litestar(plugins=[SAQPlugin(SAQConfig(queue_configs=[queue_config]))])


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param(
            {"dsn": "amqp://localhost"},
            ["'mail'", "amqp", "redis://", "postgresql://", "memory://"],
            id="unknown-scheme",
        ),
        pytest.param({"dsn": "localhost:6379"}, ["'mail'", "unsupported scheme"], id="no-scheme"),
        pytest.param(
            {"dsn": None}, ["'mail'", "neither", "dsn", "broker_instance"], id="neither-dsn-nor-instance"
        ),
        pytest.param(
            {"broker_instance": object()},
            ["'mail'", "both", "dsn", "broker_instance"],
            id="both-dsn-and-instance",
        ),
        pytest.param({"concurrency": 0}, ["'mail'", "concurrency=0", ">= 1"], id="concurrency-zero"),
        pytest.param(
            {"job_defaults": {"timeot": 5}}, ["'mail'", "job_defaults", "timeot"], id="unknown-job-default"
        ),
        pytest.param({"failed_ttl": -1}, ["'mail'", "failed_ttl=-1", ">= 0"], id="negative-failed-ttl"),
        pytest.param(
            {"sync_task_threads": 0}, ["'mail'", "sync_task_threads=0", ">= 1"], id="no-sync-threads"
        ),
        pytest.param({"tasks": [42]}, ["'mail'", "tasks=42", "not callable"], id="task-not-callable"),
        pytest.param(
            {"tasks": [tasks.echo, ("echo", tasks.sleep_for)]},
            ["'mail'", "'echo'", "twice"],
            id="duplicate-task",
        ),
        pytest.param(
            {"startup": tasks.sync_task}, ["'mail'", "startup", "sync_task", "async def"], id="sync-hook"
        ),
        pytest.param(
            {"before_process": [tasks.hook_a, 3]},
            ["'mail'", "before_process=3", "not callable"],
            id="hook-not-callable",
        ),
        pytest.param(
            {"tasks": [("", tasks.echo)]}, ["'mail'", "tasks", "non-empty name"], id="empty-task-name"
        ),
        pytest.param(
            {"cron_tz": "Mars/Olympus"}, ["'mail'", "cron_tz='Mars/Olympus'", "IANA"], id="bad-timezone"
        ),
        pytest.param({"timers": {"sweeep": 1}}, ["'mail'", "timers='sweeep'", "sweep"], id="unknown-timer"),
        pytest.param({"timers": {"sweep": 0}}, ["'mail'", "timers['sweep']=0", "> 0"], id="zero-timer"),
        pytest.param(
            {"timers": {"schedule": 0.5}},
            ["'mail'", "timers['schedule']=0.5", "whole number"],
            id="fractional-lock-timer",
        ),
        pytest.param({"worker_processes": 0}, ["'mail'", "worker_processes=0"], id="worker-processes-zero"),
        pytest.param({"burst": True}, ["'mail'", "dequeue_timeout", "burst"], id="burst-without-timeout"),
        pytest.param(
            {"dsn": "memory://", "separate_process": True},
            ["'mail'", "memory://", "separate_process=False"],
            id="memory-in-other-process",
        ),
    ],
)
def test_queue_config_error_names_queue_field_and_value(options: dict[str, Any], expected: list[str]) -> None:
    with pytest.raises(SAQConfigError) as excinfo:
        QueueConfig(name="mail", **{"dsn": "redis://localhost", **options})
    message = str(excinfo.value)
    for fragment in expected:
        assert fragment in message, f"{fragment!r} missing from: {message}"
    assert isinstance(excinfo.value, ImproperlyConfiguredException)


@pytest.mark.parametrize("cron", ["61 * * * *", "* * *", "every minute", "*/0 * * * *"])
def test_invalid_cron_names_the_expression(cron: str) -> None:
    with pytest.raises(SAQConfigError, match="not a valid cron expression") as excinfo:
        CronJob(function="tests.support.tasks.cron_tick", cron=cron)
    assert repr(cron) in str(excinfo.value)
    assert "tests.support.tasks.cron_tick" in str(excinfo.value)


def test_duplicate_queue_names() -> None:
    with pytest.raises(SAQConfigError, match="queue name 'jobs' is configured twice"):
        SAQConfig(queue_configs=[QueueConfig(name="jobs", dsn="memory://", separate_process=False)] * 2)


def test_dotted_path_to_missing_module_names_module_and_error() -> None:
    with pytest.raises(SAQConfigError) as excinfo:
        make_app(tasks=["tests.support.broken_module.some_task"])
    message = str(excinfo.value)
    assert "'mail'" in message
    assert "tests.support.broken_module" in message
    assert "this_module_does_not_exist" in message


def test_dotted_path_to_missing_attribute_names_attribute() -> None:
    with pytest.raises(SAQConfigError) as excinfo:
        make_app(tasks=["tests.support.tasks.send_mail"])
    message = str(excinfo.value)
    assert "'mail'" in message
    assert "module 'tests.support.tasks' has no attribute 'send_mail'" in message


def test_dotted_path_to_unknown_package() -> None:
    with pytest.raises(SAQConfigError, match="no module named 'nowhere'"):
        make_app(tasks=["nowhere.tasks.send"])


def test_dotted_path_to_sync_hook_fails_at_startup() -> None:
    # A plain 'def' task runs in a thread (tests/tasks/test_sync_tasks.py); a hook must be async.
    with pytest.raises(SAQConfigError, match=r"sync_task.*async def"):
        make_app(startup=["tests.support.tasks.sync_task"])


def test_dotted_path_to_non_callable() -> None:
    with pytest.raises(SAQConfigError, match=r"NOT_CALLABLE|42.*not callable"):
        make_app(tasks=["tests.support.tasks.NOT_CALLABLE"])


def test_duplicate_name_found_after_resolving_paths() -> None:
    with pytest.raises(SAQConfigError, match="'echo' is registered twice"):
        make_app(tasks=["tests.support.tasks.echo", ("echo", tasks.sleep_for)])


def test_cron_function_path_is_checked_at_startup() -> None:
    with pytest.raises(SAQConfigError, match=r"scheduled_tasks.*no attribute 'nope'"):
        make_app(scheduled_tasks=[CronJob(function="tests.support.tasks.nope", cron="* * * * *")])


def test_broker_instance_of_unknown_type_is_refused_at_startup() -> None:
    queue_config = QueueConfig(name="mail", broker_instance=object())
    from litestar_saq.brokers import queue_from_config

    with pytest.raises(SAQConfigError, match=r"'mail'.*broker_instance=object is not supported"):
        queue_from_config(queue_config, SAQConfig(queue_configs=[queue_config]))


def test_password_never_in_scheme_error() -> None:
    with pytest.raises(SAQConfigError) as excinfo:
        QueueConfig(name="mail", dsn="amqp://user:s3cret@host/")
    assert "s3cret" not in str(excinfo.value)
    assert "***" in str(excinfo.value)


def test_valid_config_accepts_every_task_form() -> None:
    queue_config = QueueConfig(
        name="mail",
        dsn="redis://localhost",
        tasks=[tasks.echo, "tests.support.tasks.sleep_for", ("renamed", "tests.support.tasks.describe_ctx")],
        scheduled_tasks=[CronJob(function="tests.support.tasks.cron_tick", cron="*/5 * * * *")],
        startup=[tasks.hook_a, "tests.support.tasks.hook_b"],
        before_process="tests.support.tasks.hook_a",
        cron_tz="Europe/Paris",
    )
    resolved = queue_config.resolve_tasks()
    assert resolved == {
        "echo": tasks.echo,
        "sleep_for": tasks.sleep_for,
        "renamed": tasks.describe_ctx,
        "cron_tick": tasks.cron_tick,
    }
    assert queue_config.resolve_hooks("startup") == [tasks.hook_a, tasks.hook_b]
    assert queue_config.resolve_hooks("before_process") == [tasks.hook_a]
    assert str(queue_config.cron_tz) == "Europe/Paris"
