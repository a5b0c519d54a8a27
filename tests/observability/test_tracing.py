"""OpenTelemetry across a real Redis queue: request → PRODUCER → CONSUMER in one trace, in-process and
in a ``workers run --process`` child; nothing at all when tracing is off.

Each test gets its own SDK ``TracerProvider`` with an in-memory exporter, installed by patching
``opentelemetry.trace.get_tracer_provider`` for the test only: the real global provider can be set
once per process, and other tests (under pytest-xdist, in the same worker process) must not see ours.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar, post
from litestar.params import JSONBody
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from saq.job import Status

from litestar_saq import MissingExtraError, QueueConfig, SAQConfig, SAQPlugin, TaskQueues, monitored_job
from litestar_saq.backends.redis import RedisQueue
from litestar_saq.testing import running_app, wait_for_job
from litestar_saq.tracing import TRACE_CONTEXT_META_KEY, instrument_queue, tracing_enabled, worker_hooks
from tests.support.brokers import REDIS_URL
from tests.support.poll import wait_until
from tests.support.procs import kill_session, start_cli

ROOT = Path(__file__).resolve().parents[2]


# --- tasks (module level: SAQ registers them by qualname, and the child process imports them) ------


async def traced_ok(ctx: dict[str, Any], *, follow_up: bool = False) -> str:
    """Open a span of its own and, if asked, enqueue a follow-up job: both belong to the job's trace."""
    tracer = trace.get_tracer_provider().get_tracer("tests.task")
    with tracer.start_as_current_span("inside the task"):
        if follow_up:
            await ctx["queue"].enqueue("traced_ok", key=f"{ctx['job'].key}-follow-up")
    return "ok"


async def traced_fail(ctx: dict[str, Any]) -> None:
    raise ValueError("the task failed on purpose")


STARTED_KEYS: set[str] = set()
"""Keys of the ``traced_sleep`` jobs whose task has begun (in this process)."""


async def traced_sleep(ctx: dict[str, Any], *, seconds: float) -> str:
    STARTED_KEYS.add(ctx["job"].key)
    await asyncio.sleep(seconds)
    return "slept"


@monitored_job()
async def traced_long(ctx: dict[str, Any], *, seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "done"


TASKS = [traced_ok, traced_fail, traced_sleep, traced_long]


@post("/enqueue")
async def enqueue_in_request(data: JSONBody[dict[str, Any]], task_queues: TaskQueues) -> dict[str, str]:
    """Enqueue inside a SERVER span, as an instrumented web server would have open."""
    tracer = trace.get_tracer_provider().get_tracer("tests.request")
    with tracer.start_as_current_span("POST /enqueue", kind=SpanKind.SERVER):
        job = await task_queues.get(data["queue"]).enqueue(data["task"], **data.get("options", {}))
    assert job is not None
    return {"key": job.key}


def make_app(queue_name: str, redis_url: str, *, enable_otel: bool | None, **queue_options: Any) -> Litestar:
    queue_config = QueueConfig(
        name=queue_name,
        dsn=redis_url,
        tasks=TASKS,
        separate_process=False,
        shutdown_grace_period_s=0,
        **queue_options,
    )
    return Litestar(
        [enqueue_in_request],
        plugins=[SAQPlugin(SAQConfig(queue_configs=[queue_config], enable_otel=enable_otel))],
    )


# --- span helpers ---------------------------------------------------------------------------------


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    """An SDK provider exporting to memory, seen as the global provider during this test only."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    return memory


@pytest.fixture
async def cleanup_keys(queue_name: str, redis_url: str) -> AsyncIterator[None]:
    yield
    queue = RedisQueue.from_url(redis_url, name=queue_name)
    keys = [key async for key in queue.redis.scan_iter(match=f"saq:*{queue_name}*")]
    if keys:
        await queue.redis.delete(*keys)
    await queue.redis.aclose()


def spans(
    exporter: InMemorySpanExporter, kind: SpanKind | None = None, key: str | None = None
) -> list[ReadableSpan]:
    return [
        span
        for span in exporter.get_finished_spans()
        if (kind is None or span.kind == kind)
        and (key is None or (span.attributes or {}).get("messaging.message.id") == key)
    ]


async def wait_for_spans(
    exporter: InMemorySpanExporter, kind: SpanKind, key: str, count: int = 1
) -> Sequence[ReadableSpan]:
    """The spans of ``kind`` for job ``key``, once ``count`` have ended (CONSUMER spans end after the job)."""
    await wait_until(lambda: len(spans(exporter, kind, key)) >= count, timeout=10)
    return spans(exporter, kind, key)


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    context = span.get_span_context()
    assert context is not None
    return context.span_id


def trace_id(span: ReadableSpan) -> int:
    context = span.get_span_context()
    assert context is not None
    return context.trace_id


async def enqueue_over_http(app: Litestar, client: Any, queue_name: str, task: str, **options: Any) -> str:
    response = await client.post("/enqueue", json={"queue": queue_name, "task": task, "options": options})
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


# --- in-process worker ----------------------------------------------------------------------------


@pytest.mark.usefixtures("cleanup_keys")
async def test_request_enqueue_and_job_run_form_one_trace(
    exporter: InMemorySpanExporter, queue_name: str, redis_url: str
) -> None:
    app = make_app(queue_name, redis_url, enable_otel=None)
    async with running_app(app) as client:
        key = await enqueue_over_http(app, client, queue_name, "traced_ok", follow_up=True)
        job = await wait_for_job(app, queue_name, key)
        assert job.status == Status.COMPLETE, job.error
        assert set(job.meta[TRACE_CONTEXT_META_KEY]) >= {"traceparent"}
        [consumer] = await wait_for_spans(exporter, SpanKind.CONSUMER, key)
        [follow_up_consumer] = await wait_for_spans(exporter, SpanKind.CONSUMER, f"{key}-follow-up")
    [server] = [span for span in exporter.get_finished_spans() if span.kind == SpanKind.SERVER]
    [producer] = spans(exporter, SpanKind.PRODUCER, key)
    [follow_up_producer] = spans(exporter, SpanKind.PRODUCER, f"{key}-follow-up")
    inner_spans = [span for span in exporter.get_finished_spans() if span.name == "inside the task"]
    [inner] = [span for span in inner_spans if parent_id(span) == span_id(consumer)]

    # request → publish → process → span in the task → publish of the follow-up → its process
    assert parent_id(producer) == span_id(server)
    assert parent_id(consumer) == span_id(producer)
    assert parent_id(follow_up_producer) == span_id(inner)
    assert parent_id(follow_up_consumer) == span_id(follow_up_producer)
    everything = [server, producer, consumer, inner, follow_up_producer, follow_up_consumer]
    assert {trace_id(span) for span in everything} == {trace_id(server)}

    assert producer.name == "publish traced_ok"
    assert consumer.name == "process traced_ok"
    expected = {
        "messaging.system": "saq",
        "messaging.destination.name": queue_name,
        "messaging.message.id": key,
        "messaging.operation": "process",
        "saq.job.function": "traced_ok",
        "saq.job.attempt": 1,
        "saq.job.status": "complete",
    }
    assert expected.items() <= dict(consumer.attributes or {}).items()
    assert (producer.attributes or {})["messaging.destination.name"] == queue_name
    assert consumer.status.status_code == StatusCode.UNSET


@pytest.mark.usefixtures("cleanup_keys")
async def test_failed_job_records_the_exception_and_every_attempt_joins_the_trace(
    exporter: InMemorySpanExporter, queue_name: str, redis_url: str
) -> None:
    app = make_app(queue_name, redis_url, enable_otel=True)
    async with running_app(app) as client:
        key = await enqueue_over_http(app, client, queue_name, "traced_fail", retries=2)
        job = await wait_for_job(app, queue_name, key)
        assert job.status == Status.FAILED
        consumers = await wait_for_spans(exporter, SpanKind.CONSUMER, key, count=2)
    [producer] = spans(exporter, SpanKind.PRODUCER, key)
    assert [(span.attributes or {})["saq.job.attempt"] for span in consumers] == [1, 2]
    assert [(span.attributes or {})["saq.job.status"] for span in consumers] == ["retried", "failed"]
    for consumer in consumers:
        assert parent_id(consumer) == span_id(producer)
        assert trace_id(consumer) == trace_id(producer)
        assert consumer.status.status_code == StatusCode.ERROR
        assert "ValueError: the task failed on purpose" in (consumer.status.description or "")
        [event] = [event for event in consumer.events if event.name == "exception"]
        assert (event.attributes or {})["exception.type"] == "ValueError"


@pytest.mark.usefixtures("cleanup_keys")
async def test_aborted_job_ends_its_span_with_an_error(
    exporter: InMemorySpanExporter, queue_name: str, redis_url: str
) -> None:
    app = make_app(queue_name, redis_url, enable_otel=True, timers={"abort": 0.1})
    async with running_app(app) as client:
        key = await enqueue_over_http(app, client, queue_name, "traced_sleep", seconds=60, timeout=0)
        queue = app.plugins.get(SAQPlugin).task_queues.get(queue_name)
        job = await queue.job(key)
        assert job is not None

        async def running() -> bool:
            stored = await queue.job(key)
            return stored is not None and stored.status == Status.ACTIVE

        await wait_until(running)
        await queue.abort(job, "no longer needed")
        assert (await wait_for_job(app, queue_name, key)).status == Status.ABORTED
        [consumer] = await wait_for_spans(exporter, SpanKind.CONSUMER, key)
    assert consumer.status.status_code == StatusCode.ERROR
    assert consumer.status.description == "aborted: no longer needed"
    assert (consumer.attributes or {})["saq.job.status"] == "aborted"


@pytest.mark.usefixtures("cleanup_keys")
async def test_job_cut_off_by_shutdown_ends_its_span_as_retried(
    exporter: InMemorySpanExporter, queue_name: str, redis_url: str
) -> None:
    app = make_app(queue_name, redis_url, enable_otel=True)
    async with running_app(app) as client:
        key = await enqueue_over_http(
            app, client, queue_name, "traced_sleep", seconds=60, timeout=0, retries=2
        )
        # The task itself has begun, not only its ACTIVE status written (which comes first).
        await wait_until(lambda: key in STARTED_KEYS)
    # The app stopped with the job running (grace period 0): the worker cancelled it and re-queued it.
    [consumer] = spans(exporter, SpanKind.CONSUMER, key)
    assert (consumer.attributes or {})["saq.job.status"] == "retried"
    assert consumer.status.status_code == StatusCode.ERROR


@pytest.mark.usefixtures("cleanup_keys")
async def test_off_means_no_spans_no_hooks_and_no_trace_context(
    exporter: InMemorySpanExporter, queue_name: str, redis_url: str
) -> None:
    app = make_app(queue_name, redis_url, enable_otel=False)
    assert worker_hooks(app.plugins.get(SAQPlugin).config) == {}
    async with running_app(app) as client:
        key = await enqueue_over_http(app, client, queue_name, "traced_ok")
        job = await wait_for_job(app, queue_name, key)
        queue = app.plugins.get(SAQPlugin).task_queues.get(queue_name)
        assert not queue._before_enqueues  # nothing runs on enqueue
    assert job.status == Status.COMPLETE
    assert job.meta == {}
    # Only the test's own spans: the request's, and the one the task opened itself.
    assert sorted(span.name for span in exporter.get_finished_spans()) == ["POST /enqueue", "inside the task"]


def test_auto_mode_follows_the_tracer_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: trace.ProxyTracerProvider())
    assert tracing_enabled(SAQConfig(enable_otel=None)) is False
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: trace.NoOpTracerProvider())
    assert tracing_enabled(SAQConfig(enable_otel=None)) is False
    assert tracing_enabled(SAQConfig(enable_otel=True)) is True
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: TracerProvider())
    assert tracing_enabled(SAQConfig(enable_otel=None)) is True
    assert tracing_enabled(SAQConfig(enable_otel=False)) is False


async def test_instrumenting_a_queue_again_replaces_or_removes_its_hook(
    exporter: InMemorySpanExporter,
) -> None:
    from litestar_saq.backends.memory import MemoryQueue

    queue = MemoryQueue(name="reinstrumented")
    await queue.connect()
    try:
        instrument_queue(queue, SAQConfig(enable_otel=True))
        instrument_queue(queue, SAQConfig(enable_otel=True))
        await queue.enqueue("traced_ok", key="once")
        assert len(spans(exporter, SpanKind.PRODUCER, "once")) == 1
        instrument_queue(queue, SAQConfig(enable_otel=False))
        job = await queue.enqueue("traced_ok", key="never")
        assert job is not None and job.meta == {}
        assert not spans(exporter, SpanKind.PRODUCER, "never")
    finally:
        await queue.disconnect()


async def test_a_tracing_failure_never_fails_an_enqueue_or_a_job(caplog: pytest.LogCaptureFixture) -> None:
    from types import SimpleNamespace

    from litestar_saq.backends.memory import MemoryQueue

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the tracer is broken")

    broken = SimpleNamespace(get_tracer=lambda *args, **kwargs: SimpleNamespace(start_span=refuse))
    queue = MemoryQueue(name="broken-tracer")
    await queue.connect()
    try:
        instrument_queue(queue, SAQConfig(enable_otel=True), tracer_provider=broken)  # type: ignore[arg-type]
        job = await queue.enqueue("traced_ok", key="still-enqueued")
        assert job is not None and job.meta == {}
        hooks = worker_hooks(SAQConfig(enable_otel=True), tracer_provider=broken)  # type: ignore[arg-type]
        ctx: dict[str, Any] = {"job": job}
        await hooks["before_process"][0](ctx)
        await hooks["after_process"][0](ctx)
    finally:
        await queue.disconnect()
    assert "could not record the PRODUCER span of job still-enqueued" in caplog.text
    assert "could not record the CONSUMER span of job still-enqueued" in caplog.text


def test_enable_otel_true_without_opentelemetry_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [module for module in sys.modules if module.split(".")[0] == "opentelemetry"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # import opentelemetry → ImportError
    with pytest.raises(MissingExtraError, match=r"litestar-saq\[otel\]") as error:
        tracing_enabled(SAQConfig(enable_otel=True))
    assert "opentelemetry-api" in str(error.value)
    assert tracing_enabled(SAQConfig(enable_otel=None)) is False


def test_importing_litestar_saq_does_not_import_opentelemetry() -> None:
    code = (
        "import sys, litestar_saq, litestar_saq.tracing, litestar_saq.monitoring, litestar_saq.job_logging\n"
        "loaded = [name for name in sys.modules if name.startswith('opentelemetry')]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


# --- a worker in a child process (litestar workers run --process) -----------------------------------


class JsonLinesSpanExporter(SpanExporter):
    """Appends each finished span as one JSON line, so the test process can read the child's spans."""

    def __init__(self, path: str) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with open(self.path, "a", encoding="utf-8") as file:
            for span in spans:
                file.write(json.dumps(describe_span(span)) + "\n")
        return SpanExportResult.SUCCESS


def describe_span(span: ReadableSpan) -> dict[str, Any]:
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": format(trace_id(span), "032x"),
        "span_id": format(span_id(span), "016x"),
        "parent_id": format(span.parent.span_id, "016x") if span.parent is not None else None,
        "attributes": dict(span.attributes or {}),
        "pid": os.getpid(),
    }


def create_worker_app() -> Litestar:
    """App factory for the child test: an SDK provider exporting to ``TEST_SPANS_FILE``, auto tracing."""
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(os.environ["TEST_SPANS_FILE"])))
        trace.set_tracer_provider(provider)
    queue_config = QueueConfig(
        name=os.environ["TEST_QUEUE"],
        dsn=os.environ.get("REDIS_URL", REDIS_URL),
        tasks=TASKS,
        separate_process=True,
        timers={"sweep": 1},
    )
    return Litestar(plugins=[SAQPlugin(SAQConfig(queue_configs=[queue_config]))])


@pytest.fixture
def child_env(queue_name: str, redis_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TEST_", "LITESTAR_"))}
    env.update(
        TEST_QUEUE=queue_name,
        TEST_SPANS_FILE=str(tmp_path / "spans.jsonl"),
        REDIS_URL=redis_url,
        PYTHONUNBUFFERED="1",
        LITESTAR_QUIET_CONSOLE="1",
    )
    yield env


def read_spans(path: str) -> list[dict[str, Any]]:
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as file:
        return [json.loads(line) for line in file if line.endswith("\n")]


@pytest.mark.usefixtures("cleanup_keys")
async def test_trace_crosses_into_a_worker_process(
    exporter: InMemorySpanExporter, child_env: dict[str, str], queue_name: str, redis_url: str, tmp_path: Path
) -> None:
    queue = RedisQueue.from_url(redis_url, name=queue_name)
    await queue.connect()
    instrument_queue(queue, SAQConfig(enable_otel=True))
    process = start_cli(
        "tests.observability.test_tracing:create_worker_app",
        ["workers", "run", "--process"],
        child_env,
        tmp_path / "workers.log",
    )
    try:
        tracer = trace.get_tracer_provider().get_tracer("tests.request")
        with tracer.start_as_current_span("POST /enqueue", kind=SpanKind.SERVER):
            job = await queue.enqueue("traced_ok", key=f"{queue_name}-cross")
            # A monitored job in the child: heartbeat 2 s under a 1 s sweep, yet it runs once.
            long_job = await queue.enqueue("traced_long", seconds=3, heartbeat=2, timeout=60, retries=3)
        assert job is not None and long_job is not None
        done = await wait_for_job(queue, None, job.key, timeout=30)
        assert done.status == Status.COMPLETE, (done.error, process.log())
        long_done = await wait_for_job(queue, None, long_job.key, timeout=30)
        assert (long_done.status, long_done.attempts) == (Status.COMPLETE, 1), long_done.error

        def consumer_spans() -> list[dict[str, Any]]:
            return [
                span
                for span in read_spans(child_env["TEST_SPANS_FILE"])
                if span["kind"] == "CONSUMER" and span["attributes"]["messaging.message.id"] == job.key
            ]

        [consumer] = await wait_until(consumer_spans, timeout=10)
    finally:
        kill_session(process)
        await queue.disconnect()
    [producer] = spans(exporter, SpanKind.PRODUCER, job.key)
    assert consumer["pid"] != os.getpid()
    assert consumer["trace_id"] == format(trace_id(producer), "032x")
    assert consumer["parent_id"] == format(span_id(producer), "016x")
    assert consumer["name"] == "process traced_ok"
    assert consumer["attributes"]["messaging.destination.name"] == queue_name
    [inner] = [span for span in read_spans(child_env["TEST_SPANS_FILE"]) if span["name"] == "inside the task"]
    assert inner["parent_id"] == consumer["span_id"]
