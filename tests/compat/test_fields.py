"""Upstream's ``QueueConfig``/``SAQConfig`` fields and defaults are accepted; the gone ones warn, naming the
field that replaces them, and are mapped onto it (or fail naming it): never ignored in silence."""

from __future__ import annotations

import ast
from datetime import timezone
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.serialization import decode_json, encode_json
from litestar.utils.module_loader import module_to_os_path
from redis.asyncio import Redis

from litestar_saq import (
    PostgresQueueOptions,
    QueueConfig,
    RedisQueueOptions,
    SAQConfig,
    SAQConfigError,
    SAQPlugin,
)
from litestar_saq.backends.asyncpg import AsyncpgQueue
from litestar_saq.backends.redis import RedisQueue
from litestar_saq.brokers import queue_from_config
from tests.compat.upstream_sdist import upstream_tree

REDIS_DSN = "redis://localhost:6379/0"


def upstream_serializer(value: Any) -> str:
    return encode_json(value).decode("utf-8")


UPSTREAM_QUEUE_CONFIG_DEFAULTS: dict[str, Any] = {
    "dsn": None,
    "broker_instance": None,
    "id": None,
    "name": "default",
    "concurrency": 10,
    "broker_options": {},
    "broker_instance_options": {},
    "tasks": [],
    "scheduled_tasks": [],
    "cron_tz": timezone.utc,
    "startup": None,
    "shutdown": None,
    "before_process": None,
    "after_process": None,
    "timers": None,
    "dequeue_timeout": 0,
    "burst": False,
    "max_burst_jobs": None,
    "metadata": None,
    "multiprocessing_mode": "multiprocessing",
    "separate_process": True,
    "shutdown_grace_period_s": None,
    "cancellation_hard_deadline_s": None,
    "poll_interval": None,
}
"""Every field of upstream's ``QueueConfig`` (0.8.0) with its default."""

UPSTREAM_SAQ_CONFIG_DEFAULTS: dict[str, Any] = {
    "queue_configs": [],
    "queue_instances": None,
    "queues_dependency_key": "task_queues",
    "worker_processes": 1,
    "json_deserializer": decode_json,
    "json_serializer": upstream_serializer,
    "static_files": Path(module_to_os_path("saq")) / "web" / "static",
    "web_enabled": False,
    "web_path": "/saq",
    "web_guards": None,
    "web_include_in_schema": False,
    "use_server_lifespan": False,
    "enable_otel": None,
    "otel_tracer_name": "litestar_saq",
}
"""Every field of upstream's ``SAQConfig`` (0.8.0) with its default."""

GONE_FIELDS = {
    "id": "metadata",
    "broker_instance_options": "broker_options",
    "multiprocessing_mode": "separate_process",
    "queue_instances": "broker_instance",
    "static_files": "no effect",
    "otel_tracer_name": "no effect",
}
"""Fields that have gone, and what their DeprecationWarning names instead."""


def upstream_fields(class_name: str) -> set[str]:
    tree = ast.parse((upstream_tree() / "litestar_saq" / "config.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            targets = [item.target for item in node.body if isinstance(item, ast.AnnAssign)]
            return {target.id for target in targets if isinstance(target, ast.Name)}
    raise AssertionError(f"no class {class_name} in upstream's config.py")


def test_the_lists_hold_every_upstream_field() -> None:
    assert upstream_fields("QueueConfig") == set(UPSTREAM_QUEUE_CONFIG_DEFAULTS)
    assert upstream_fields("SAQConfig") == set(UPSTREAM_SAQ_CONFIG_DEFAULTS)


@pytest.mark.parametrize(("field", "default"), UPSTREAM_QUEUE_CONFIG_DEFAULTS.items())
def test_queue_config_accepts_upstream_field_and_default(field: str, default: Any) -> None:
    settings = {"dsn": REDIS_DSN, field: default}
    if field == "dsn":  # upstream's default None needs a broker_instance, as here
        settings["broker_instance"] = Redis.from_url(REDIS_DSN)
    if field in GONE_FIELDS and default is not None:
        with pytest.warns(DeprecationWarning, match=GONE_FIELDS[field]):
            QueueConfig(**settings)
    else:
        QueueConfig(**settings)  # no warning (-W error)


@pytest.mark.parametrize(("field", "default"), UPSTREAM_SAQ_CONFIG_DEFAULTS.items())
def test_saq_config_accepts_upstream_field_and_default(field: str, default: Any) -> None:
    if field in GONE_FIELDS and default is not None:
        with pytest.warns(DeprecationWarning, match=GONE_FIELDS[field]):
            SAQConfig(**{field: default})
    else:
        SAQConfig(**{field: default})


def test_an_app_with_every_upstream_default_builds_without_warnings() -> None:
    current = {f: v for f, v in UPSTREAM_QUEUE_CONFIG_DEFAULTS.items() if f not in GONE_FIELDS}
    queue_config = QueueConfig(**{**current, "dsn": REDIS_DSN, "name": "samples"})
    saq_current = {f: v for f, v in UPSTREAM_SAQ_CONFIG_DEFAULTS.items() if f not in GONE_FIELDS}
    config = SAQConfig(**{**saq_current, "queue_configs": [queue_config]})
    Litestar(plugins=[SAQPlugin(config)])
    # Upstream's None means SAQ's default, which is ours.
    assert (queue_config.cancellation_hard_deadline_s, queue_config.poll_interval) == (1.0, 0.0)


def test_id_is_kept_as_metadata() -> None:
    with pytest.warns(DeprecationWarning, match=r"QueueConfig\(name='q', id=\.\.\.\).*metadata"):
        queue_config = QueueConfig(name="q", dsn=REDIS_DSN, id="billing-worker", metadata={"team": "ops"})
    assert queue_config.metadata == {"id": "billing-worker", "team": "ops"}


def test_multiprocessing_mode_has_no_effect_and_says_so() -> None:
    with pytest.warns(DeprecationWarning, match="no effect.*separate_process"):
        QueueConfig(dsn=REDIS_DSN, multiprocessing_mode="threading")


def test_redis_broker_instance_options_become_client_options() -> None:
    with pytest.warns(DeprecationWarning, match="broker_options"):
        queue_config = QueueConfig(dsn=REDIS_DSN, broker_instance_options={"health_check_interval": 7})
    queue, owned = queue_from_config(queue_config, SAQConfig(queue_configs=[queue_config]))
    assert isinstance(queue, RedisQueue) and owned
    assert queue.redis.connection_pool.connection_kwargs["health_check_interval"] == 7


def test_postgres_broker_instance_options_map_to_the_asyncpg_pool() -> None:
    with pytest.warns(DeprecationWarning, match="broker_options"):
        queue_config = QueueConfig(
            dsn="postgresql://localhost/app",
            broker_instance_options={"min_size": 1, "max_size": 3, "max_idle": 60},
        )
    assert queue_config.broker_options == {
        "min_size": 1,
        "max_size": 3,
        "pool_options": {"max_inactive_connection_lifetime": 60},
    }
    queue, _ = queue_from_config(queue_config, SAQConfig(queue_configs=[queue_config]))
    assert isinstance(queue, AsyncpgQueue)
    assert (queue.min_size, queue.max_size) == (1, 3)


def test_a_psycopg_only_pool_option_fails_naming_it_and_the_replacement() -> None:
    with (
        pytest.warns(DeprecationWarning),
        pytest.raises(SAQConfigError, match=r"broker_instance_options\['kwargs'\].*psycopg.*pool_options"),
    ):
        QueueConfig(dsn="postgresql://localhost/app", broker_instance_options={"kwargs": {"x": 1}})


def test_redis_queue_options_go_to_the_queue() -> None:
    options: RedisQueueOptions = {"max_concurrent_ops": 3, "swept_error_message": "swept by test"}
    queue_config = QueueConfig(dsn=REDIS_DSN, broker_options=options)
    queue, _ = queue_from_config(queue_config, SAQConfig(queue_configs=[queue_config]))
    assert isinstance(queue, RedisQueue)
    assert queue.swept_error_message == "swept by test"
    assert queue._op_sem._value == 3  # SAQ keeps max_concurrent_ops only as its semaphore


def test_postgres_queue_options_go_to_the_asyncpg_queue() -> None:
    options: PostgresQueueOptions = {
        "versions_table": "v",
        "jobs_table": "j",
        "stats_table": "s",
        "min_size": 2,
        "max_size": 5,
        "saq_lock_keyspace": 7,
        "priorities": (0, 10),
        "swept_error_message": "swept",
        "manage_pool_lifecycle": True,
    }
    queue_config = QueueConfig(dsn="postgresql://localhost/app", broker_options=options)
    queue, _ = queue_from_config(queue_config, SAQConfig(queue_configs=[queue_config]))
    assert isinstance(queue, AsyncpgQueue)
    assert (queue.jobs_table, queue.stats_table, queue.versions_table) == ("j", "s", "v")
    assert (queue.min_size, queue.max_size, queue.saq_lock_keyspace) == (2, 5, 7)


def test_queue_instances_become_broker_instances() -> None:
    queue = RedisQueue(Redis.from_url(REDIS_DSN), name="samples")
    queue_config = QueueConfig(name="samples", dsn=REDIS_DSN)
    with pytest.warns(DeprecationWarning, match="broker_instance"):
        SAQConfig(queue_configs=[queue_config], queue_instances={"samples": queue})
    assert (queue_config.dsn, queue_config.broker_instance) == (None, queue)
    with pytest.warns(DeprecationWarning), pytest.raises(SAQConfigError, match=r"'other'.*no QueueConfig"):
        SAQConfig(queue_configs=[QueueConfig(dsn=REDIS_DSN)], queue_instances={"other": queue})


def test_the_warning_points_at_the_users_line() -> None:
    with pytest.warns(DeprecationWarning) as caught:
        QueueConfig(dsn=REDIS_DSN, id="x")
    assert caught[0].filename == __file__
