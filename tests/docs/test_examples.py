"""Run every code sample of the documentation (``docs/examples/``), so a broken sample fails the suite."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable
from importlib import import_module
from pathlib import Path
from types import ModuleType

import asyncpg
import pytest
from litestar import Litestar
from redis.asyncio import Redis

from litestar_saq import SAQConfig, SAQPlugin
from litestar_saq.backends.asyncpg import AsyncpgQueue
from litestar_saq.backends.memory import MemoryQueue
from litestar_saq.backends.redis import RedisQueue
from litestar_saq.brokers import queue_from_config
from litestar_saq.testing import drain, in_memory_queues, running_app, saq_in_memory, wait_for_job

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"

__all__ = ("saq_in_memory",)  # the fixture, used by test_testing_samples


def sample(name: str) -> ModuleType:
    return import_module(f"docs.examples.{name}")


def plugin_of(app: Litestar) -> SAQPlugin:
    return app.plugins.get(SAQPlugin)


def test_every_sample_is_tested() -> None:
    tested = set(Path(__file__).read_text().split('sample("')[1:])
    names = {chunk.split('"')[0] for chunk in tested}
    samples = {path.stem for path in EXAMPLES.glob("*.py") if path.stem != "__init__"}
    assert samples - names == set(), "samples without a test"


async def test_first_app() -> None:
    app = sample("first_app").app
    async with running_app(app) as client:
        key = (await client.post("/signup", json={"email": "ada@example.com"})).json()["key"]
        await drain(app)
        assert app.state.sent == ["ada@example.com"]
        assert (await client.get(f"/jobs/{key}")).json() == {
            "status": "complete",
            "result": "welcomed ada@example.com",
        }


async def test_configuration() -> None:
    app = sample("configuration").app
    assert sample("tasks").send_welcome_email.__name__ == "send_welcome_email"  # the samples' tasks
    config = plugin_of(app).config
    assert [queue_config.name for queue_config in config.queue_configs] == ["default", "reports"]
    assert set(config.queue_configs[0].resolve_tasks()) == {"send_welcome_email", "reindex", "cleanup"}
    with in_memory_queues(app):
        async with running_app(app):
            queue = plugin_of(app).task_queues.get("default")
            job = await queue.enqueue("reindex", shard=3)
            assert job is not None
            assert (await wait_for_job(queue, None, job.key)).result == 3
            assert app.state.worker_started is True


def test_brokers() -> None:
    brokers = sample("brokers")
    config = SAQConfig(queue_configs=[brokers.redis_queue, brokers.postgres_queue, brokers.memory_queue])
    built = {
        queue_config.name: queue_from_config(queue_config, config)[0] for queue_config in config.queue_configs
    }
    assert isinstance(built["emails"], RedisQueue)
    assert isinstance(built["billing"], AsyncpgQueue)
    assert isinstance(built["local"], MemoryQueue)
    assert built["billing"].max_size == 20
    redis = Redis()
    queue, _ = queue_from_config(brokers.queue_on_my_client(redis), config)
    assert isinstance(queue, RedisQueue) and queue.redis is redis
    assert queue.owns_client is False  # the plugin never closes your client


@pytest.fixture
async def schema_url() -> AsyncIterator[str]:
    database_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    schema = f"docs_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(database_url)
    await connection.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in database_url else "?"
    try:
        yield f"{database_url}{separator}search_path={schema}"
    finally:
        await connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await connection.close()


async def test_transactional_enqueue(schema_url: str) -> None:
    app = sample("transactional_enqueue").create_app(schema_url)
    async with running_app(app) as client:
        first = await client.post("/signup", json={"email": "ada@example.com"})
        assert first.status_code == 201
        queue = plugin_of(app).task_queues.get("default")
        job = await wait_for_job(queue, None, first.json()["key"])
        assert job.status == "complete" and job.result == first.json()["user_id"]

        again = await client.post("/signup", json={"email": "ada@example.com"})
        assert again.status_code == 409
        assert await queue.count("queued") == 0  # the rolled-back transaction left no job


def test_worker_modes() -> None:
    config = plugin_of(sample("worker_modes").app).config
    assert config.use_server_lifespan is True
    assert [(q.name, q.separate_process) for q in config.queue_configs] == [
        ("emails", False),
        ("reports", True),
    ]
    assert plugin_of(sample("worker_modes").app).queues_to_run_here() == [config.queue_configs[0]]


async def test_monitored() -> None:
    app = sample("monitored").app
    async with running_app(app) as client:
        key = (await client.post("/reports", json={"pages": 5})).json()["key"]
        await drain(app)
        assert (await client.get(f"/reports/{key}")).json() == {
            "status": "complete",
            "progress": 1.0,
            "result": {"pages": 5},
        }


async def test_tracing(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # The test's own provider, without touching the process-wide one that other tests see.
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    tracing = sample("tracing")
    monkeypatch.setattr(tracing, "tracer", provider.get_tracer("myapp"))
    app = tracing.app
    async with running_app(app) as client:
        assert (await client.post("/orders/7/charge")).status_code == 201
        await drain(app)
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert {"publish charge", "process charge", "call payment provider"} <= set(spans)
    trace_ids = {span.context.trace_id for span in spans.values()}
    assert len(trace_ids) == 1
    assert spans["call payment provider"].parent.span_id == spans["process charge"].context.span_id


async def test_job_logging() -> None:
    app = sample("job_logging").app
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    job_logger = logging.getLogger("litestar_saq.jobs")
    job_logger.addHandler(handler)
    try:
        async with running_app(app):
            await plugin_of(app).task_queues.get("default").enqueue("resize_image", image_id=1)
            await drain(app)
    finally:
        job_logger.removeHandler(handler)
    assert records[-1].getMessage().startswith("job complete: queue=default task=resize_image")
    assert records[-1].status == "complete"  # type: ignore[attr-defined]


async def test_web_ui() -> None:
    app = sample("web_ui").app
    async with running_app(app) as client:
        assert (await client.get("/saq/")).status_code == 401
        allowed = await client.get("/saq/ops", headers={"Authorization": "Bearer change-me"})
        assert allowed.status_code == 200
        queues = await client.get("/saq/api/queues", headers={"Authorization": "Bearer change-me"})
        assert queues.status_code == 200


async def test_testing_samples(saq_in_memory: Callable[[Litestar], None]) -> None:
    samples = sample("testing_app")
    await samples.test_signup_sends_the_welcome_email()
    await samples.test_the_job_result(saq_in_memory)
    assert sample("conftest_sample").pytest_plugins == ["litestar_saq.testing"]


def test_from_raw_saq() -> None:
    raw = sample("from_raw_saq")
    queue_config = plugin_of(Litestar(plugins=[raw.saq])).config.queue_configs[0]
    assert list(queue_config.resolve_tasks()) == [name.__name__ for name in raw.settings["functions"]] + [
        "cleanup"
    ]
    assert [job.cron for job in queue_config.resolve_cron_jobs()] == [
        job.cron for job in raw.settings["cron_jobs"]
    ]


async def test_from_upstream() -> None:
    app = sample("from_upstream").app
    with in_memory_queues(app):
        async with running_app(app) as client:
            key = (await client.post("/reports")).json()["key"]
            job = await wait_for_job(app, "samples", key)
            assert job.result == "ops@example.com"


async def test_task_handles() -> None:
    module = sample("task_handles")
    app = module.app
    async with running_app(app) as client:
        assert (await client.post("/signup", json={"email": "ada@example.com"})).status_code == 201
        assert (await client.post("/legacy", json={"email": "bob@example.com"})).status_code == 201
        key = (await client.post("/thumbnails", json={"path": "cat"})).json()["key"]
        await drain(app)
        assert app.state.mailer.sent == ["ada@example.com: Welcome!", "bob@example.com: Welcome!"]
        assert app.state.db_log == [
            "welcomed ada@example.com",
            "commit",
            "welcomed bob@example.com",
            "commit",
        ]
        job = await wait_for_job(app, "default", key)
        assert (job.result, job.progress) == ("cat.thumb.png", 1.0)
        assert await module.send_welcome.apply(email="eve@example.com") == "eve@example.com"
        handle_job = await module.send_welcome.with_options(scheduled=2**40).enqueue(email="x")
        assert (handle_job.timeout, handle_job.retries) == (30, 3)  # @task over job_defaults
