"""OpenTelemetry: the request, the enqueue and the job run in one trace."""

from __future__ import annotations

from litestar import Litestar, post
from litestar.params import FromPath
from opentelemetry import trace

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin, TaskContext, TaskQueues

tracer = trace.get_tracer("myapp")


async def charge(ctx: TaskContext, *, order_id: int) -> int:
    # The job's CONSUMER span is current: spans opened here are its children.
    with tracer.start_as_current_span("call payment provider") as span:
        span.set_attribute("order.id", order_id)
    return order_id


@post("/orders/{order_id:int}/charge")
async def charge_order(order_id: FromPath[int], task_queues: TaskQueues) -> dict[str, str]:
    # A PRODUCER span, child of the request's span; its context travels in the job.
    job = await task_queues.get("default").enqueue("charge", order_id=order_id)
    assert job is not None
    return {"key": job.key}


saq = SAQPlugin(
    SAQConfig(
        queue_configs=[QueueConfig(dsn="memory://", tasks=[charge], separate_process=False)],
        enable_otel=None,  # the default: on when a tracer provider (e.g. the SDK's) is set at startup
    )
)
app = Litestar([charge_order], plugins=[saq])
