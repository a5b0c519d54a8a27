"""OpenTelemetry: PRODUCER spans on enqueue, CONSUMER spans around job runs, context carried in the job.

With ``SAQConfig(enable_otel=...)`` on, every enqueue through the plugin's queues (``TaskQueues``)
opens a PRODUCER span, a child of the span active at the time (e.g. the request's), and writes the W3C
trace context into ``job.meta["otel"]``. The worker, in whatever process or host it runs, opens a
CONSUMER span around the job as a child of that producer span, so the request, the enqueue and the
job run form one trace. Spans that a task opens, and jobs it enqueues, are children of its CONSUMER
span; the span itself is ``ctx["otel_span"]`` (or ``opentelemetry.trace.get_current_span()``).

``enable_otel``: ``None`` (default) traces when ``opentelemetry-api`` is installed and a real tracer
provider (e.g. the SDK's) is set when the app starts; ``True`` always traces (and needs the ``otel``
extra); ``False`` never. When off, nothing is registered: enqueues and jobs run exactly as without
this module, and ``opentelemetry`` is not imported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from saq.job import Status

from litestar_saq.exceptions import MissingExtraError

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider
    from saq.job import Job
    from saq.queue import Queue

    from litestar_saq.config import SAQConfig

__all__ = (
    "CONSUMER_SPAN_KEY",
    "TRACE_CONTEXT_META_KEY",
    "instrument_queue",
    "tracing_enabled",
    "worker_hooks",
)

WorkerHook = Callable[[Any], Coroutine[Any, Any, Any]]

logger = logging.getLogger("litestar_saq.tracing")

TRACE_CONTEXT_META_KEY = "otel"
"""Key in ``job.meta`` holding the producer's trace context (``traceparent``, ``tracestate``…)."""

CONSUMER_SPAN_KEY = "otel_span"
"""Key in ``ctx`` holding the job's CONSUMER span while it runs."""

_CONTEXT_TOKEN_KEY = "_otel_context_token"
_PRODUCER_HOOK_ATTRIBUTE = "_litestar_saq_producer_spans"
_INSTRUMENTATION_NAME = "litestar_saq"
_MESSAGING_SYSTEM = "saq"


def tracing_enabled(config: SAQConfig) -> bool:
    """Whether ``config`` asks for spans now (``enable_otel``: ``None`` = auto, ``True``, ``False``).

    Raises:
        MissingExtraError: ``enable_otel=True`` but ``opentelemetry-api`` is not installed.
    """
    if config.enable_otel is False:
        return False
    try:
        from opentelemetry import trace
    except ImportError:
        if config.enable_otel:
            raise MissingExtraError(
                "opentelemetry-api", install="litestar-saq[otel]", needed_for="SAQConfig(enable_otel=True)"
            ) from None
        return False
    if config.enable_otel:
        return True
    # Auto: only a provider someone set up (the SDK's, a vendor's) records anything; the API's
    # default proxy or no-op provider would make every span pure overhead.
    provider = trace.get_tracer_provider()
    return not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def instrument_queue(
    queue: Queue, config: SAQConfig, *, tracer_provider: TracerProvider | None = None
) -> None:
    """Make enqueues through ``queue`` open PRODUCER spans and carry the trace context in the job.

    Safe to call again for the same queue (e.g. a user's ``broker_instance`` across app restarts): the
    previous instrumentation is replaced, or removed when tracing is now off.

    Args:
        queue: the queue to instrument.
        config: the plugin's configuration (``enable_otel``).
        tracer_provider: the provider to use instead of the global one.
    """
    previous = getattr(queue, _PRODUCER_HOOK_ATTRIBUTE, None)
    if previous is not None:
        queue.unregister_before_enqueue(previous)
        setattr(queue, _PRODUCER_HOOK_ATTRIBUTE, None)
    if not tracing_enabled(config):
        return
    hook = _producer_hook(_tracer(tracer_provider), queue.name)
    queue.register_before_enqueue(hook)
    # Remembered on the queue itself, so a second call finds it without any module-level registry.
    setattr(queue, _PRODUCER_HOOK_ATTRIBUTE, hook)


def worker_hooks(
    config: SAQConfig, *, tracer_provider: TracerProvider | None = None
) -> dict[str, list[WorkerHook]]:
    """The plugin's own worker hooks by hook name (CONSUMER spans), run before the user's hooks.

    Empty when ``config`` has tracing off.
    """
    if not tracing_enabled(config):
        return {}
    start, end = _consumer_hooks(_tracer(tracer_provider))
    return {"before_process": [start], "after_process": [end]}


def _tracer(tracer_provider: TracerProvider | None) -> Tracer:
    from opentelemetry import trace

    provider = tracer_provider or trace.get_tracer_provider()
    return provider.get_tracer(_INSTRUMENTATION_NAME)


def _job_attributes(job: Job, queue_name: str, operation: str) -> dict[str, Any]:
    return {
        "messaging.system": _MESSAGING_SYSTEM,
        "messaging.destination.name": queue_name,
        "messaging.message.id": job.key,
        "messaging.operation": operation,
        "saq.job.function": job.function,
    }


def _producer_hook(tracer: Tracer, queue_name: str) -> Callable[[Job], Coroutine[Any, Any, None]]:
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind

    async def add_producer_span(job: Job) -> None:
        if job.key.startswith("cron:") and not trace.get_current_span().get_span_context().is_valid:
            # The worker re-enqueues every cron job on each schedule tick; outside any trace those
            # would be a root span per job per second. The run still gets its CONSUMER span.
            return
        try:
            span = tracer.start_span(
                f"publish {job.function}",
                kind=SpanKind.PRODUCER,
                attributes={
                    **_job_attributes(job, queue_name, "publish"),
                    "messaging.operation.type": "send",
                },
            )
            try:
                carrier: dict[str, str] = {}
                propagate.inject(carrier, context=trace.set_span_in_context(span))
                if carrier:
                    job.meta[TRACE_CONTEXT_META_KEY] = carrier
            finally:
                span.end()
        except Exception:
            # Tracing must never cost an enqueue: the job goes out without trace context.
            _log_tracing_error("PRODUCER span", queue_name, job)

    return add_producer_span


def _consumer_hooks(tracer: Tracer) -> tuple[WorkerHook, WorkerHook]:
    from opentelemetry import context, propagate, trace
    from opentelemetry.trace import SpanKind

    async def start_consumer_span(ctx: dict[str, Any]) -> None:
        job: Job = ctx["job"]
        try:
            open_consumer_span(ctx, job)
        except Exception:
            # Tracing must never fail a job: it runs without its span.
            _log_tracing_error("CONSUMER span", job.queue.name if job.queue is not None else "", job)

    def open_consumer_span(ctx: dict[str, Any], job: Job) -> None:
        carrier = job.meta.get(TRACE_CONTEXT_META_KEY)
        # An empty base context: a job enqueued without trace context starts its own trace instead
        # of joining whatever happens to be current in the worker.
        parent = propagate.extract(carrier if isinstance(carrier, dict) else {}, context=context.Context())
        queue_name = job.queue.name if job.queue is not None else ""
        span = tracer.start_span(
            f"process {job.function}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                **_job_attributes(job, queue_name, "process"),
                "messaging.operation.type": "process",
                "saq.job.attempt": job.attempts,
            },
        )
        ctx[CONSUMER_SPAN_KEY] = span
        # Current in this worker task, so the job's task (created from it) and its follow-up
        # enqueues see the span as their parent; detached in end_consumer_span.
        ctx[_CONTEXT_TOKEN_KEY] = context.attach(trace.set_span_in_context(span, parent))

    async def end_consumer_span(ctx: dict[str, Any]) -> None:
        span: Span | None = ctx.pop(CONSUMER_SPAN_KEY, None)
        token = ctx.pop(_CONTEXT_TOKEN_KEY, None)
        if span is None:
            return
        job: Job = ctx["job"]
        try:
            _record_outcome(span, job, ctx.get("exception"))
        except Exception:
            # A raise here would also skip the user's after_process hooks.
            _log_tracing_error("outcome of the CONSUMER span", job.queue.name if job.queue else "", job)
        finally:
            span.end()
            if token is not None:
                context.detach(token)

    return start_consumer_span, end_consumer_span


def _record_outcome(span: Span, job: Job, exception: BaseException | None) -> None:
    from opentelemetry.trace import StatusCode

    status = job.status
    retried = status in (Status.QUEUED, Status.NEW)
    span.set_attribute("saq.job.status", "retried" if retried else status.value)
    if exception is not None:
        span.record_exception(exception)
        span.set_status(StatusCode.ERROR, f"{type(exception).__name__}: {exception}")
    elif status == Status.ABORTED:
        span.set_status(StatusCode.ERROR, f"aborted: {job.error or 'abort'}")
    elif retried:
        # Cancelled without an error of its own (worker shutdown, a sweep): it will run again.
        span.set_status(StatusCode.ERROR, f"interrupted, job re-queued: {job.error or 'cancelled'}")
    elif status == Status.FAILED:
        span.set_status(StatusCode.ERROR, job.error or "failed")


def _log_tracing_error(what: str, queue_name: str, job: Job) -> None:
    logger.warning(
        "queue %r: could not record the %s of job %s",
        queue_name,
        what,
        job.key,
        exc_info=True,
        extra={"queue": queue_name, "job_key": job.key},
    )
