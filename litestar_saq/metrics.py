"""Prometheus metrics: queue gauges read from the broker at scrape time, job histograms per process.

Queue metrics (jobs queued, active, scheduled, the workers' totals, the oldest queued job's wait) come
from the broker on every scrape, so they are right whichever process ran the jobs. Job metrics
(durations, enqueue-to-start latency, jobs started and finished) are recorded by worker hooks in the
process that runs the job; with ``PROMETHEUS_MULTIPROC_DIR`` set (``workers run --metrics-port``) every
child writes them there and the supervisor serves their sum. ``prometheus-client`` is imported only here,
and only when metrics are on.
"""

from __future__ import annotations

import functools
import os
import time
from typing import TYPE_CHECKING, Any

from saq.job import Status

from litestar_saq._status import status_of
from litestar_saq.dsn import describe_broker
from litestar_saq.extras import require_prometheus

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from prometheus_client.registry import CollectorRegistry
    from saq.queue import Queue

__all__ = (
    "PREFIX",
    "JobMetrics",
    "job_metric_hooks",
    "oldest_queued_age_s",
    "render_metrics",
    "serve_job_metrics",
)

PREFIX = "litestar_saq_"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)


class JobMetrics:
    """This process's job metrics, registered once in prometheus-client's default registry."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        labels = ("queue", "function")
        self.duration = Histogram(
            f"{PREFIX}job_duration_seconds",
            "Seconds a job ran, by outcome.",
            (*labels, "outcome"),
            buckets=DURATION_BUCKETS,
        )
        self.latency = Histogram(
            f"{PREFIX}job_start_latency_seconds",
            "Seconds from a job's enqueue (or due time) to its start.",
            labels,
            buckets=DURATION_BUCKETS,
        )
        self.started = Counter(f"{PREFIX}jobs_started", "Jobs this process started.", labels)
        self.finished = Counter(
            f"{PREFIX}jobs_finished",
            "Jobs this process finished, by outcome (complete, failed, aborted, retried).",
            (*labels, "outcome"),
        )


@functools.cache
def job_metrics() -> JobMetrics:
    """The process's one ``JobMetrics`` (prometheus-client refuses to register a name twice)."""
    return JobMetrics()


def job_metric_hooks() -> dict[str, list[Any]]:
    """``before_process`` / ``after_process`` hooks that record this process's job metrics."""
    metrics = job_metrics()

    async def job_started(ctx: Any) -> None:
        job = ctx["job"]
        metrics.started.labels(job.queue.name, job.function).inc()
        due_ms = max(job.queued or 0, (job.scheduled or 0) * 1000)
        if due_ms:
            metrics.latency.labels(job.queue.name, job.function).observe(
                max(0.0, time.time() - due_ms / 1000)
            )

    async def job_finished(ctx: Any) -> None:
        job = ctx["job"]
        status = job.status.value
        outcome = "retried" if status in ("queued", "active") else status
        metrics.finished.labels(job.queue.name, job.function, outcome).inc()
        if job.started:
            seconds = max(0.0, time.time() - job.started / 1000)
            metrics.duration.labels(job.queue.name, job.function, outcome).observe(seconds)

    return {"before_process": [job_started], "after_process": [job_finished]}


async def oldest_queued_age_s(queue: Queue) -> float:
    """Seconds the longest-waiting queued job has waited since it became due; 0 when none waits."""
    from litestar_saq.backends.asyncpg import AsyncpgQueue  # backends are imported where used
    from litestar_saq.backends.asyncpg_schema import quote_identifier
    from litestar_saq.backends.redis import RedisQueue

    now_s = time.time()
    due_s: float | None = None
    if isinstance(queue, RedisQueue):
        head = await queue.redis.lindex(queue.namespace("queued"), 0)  # FIFO: the head waited longest
        payload = await queue.redis.get(head) if head else None
        if payload:
            job = queue.deserialize(payload)
            due_s = max((job.queued or 0) / 1000, job.scheduled or 0) if job else None
    elif isinstance(queue, AsyncpgQueue):
        async with queue.pool.acquire() as connection:
            due_s = await connection.fetchval(
                f"SELECT min(scheduled) FROM {quote_identifier(queue.jobs_table)} "
                "WHERE queue = $1 AND status = 'queued' AND scheduled <= $2",
                queue.name,
                int(now_s),
            )
    else:
        async for job in queue.iter_jobs(statuses=[Status.QUEUED]):
            due = max((job.queued or 0) / 1000, job.scheduled or 0)
            due_s = due if due_s is None else min(due_s, due)
    return max(0.0, now_s - due_s) if due_s else 0.0


class _Snapshot:
    """A prometheus-client collector of queue gauges read before the scrape."""

    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> Iterator[Any]:
        yield from self.families


async def queue_families(queues: Sequence[Queue]) -> list[Any]:
    """Read every queue's counts, workers' totals and oldest wait from its broker as metric families."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    jobs = GaugeMetricFamily(
        f"{PREFIX}queue_jobs", "Jobs in the queue by state (from the broker).", labels=["queue", "state"]
    )
    workers = GaugeMetricFamily(f"{PREFIX}queue_workers", "Live workers of the queue.", labels=["queue"])
    oldest = GaugeMetricFamily(
        f"{PREFIX}queue_oldest_job_age_seconds",
        "Seconds the longest-waiting queued job has waited.",
        labels=["queue"],
    )
    totals = CounterMetricFamily(
        f"{PREFIX}worker_jobs",
        "Jobs per live worker by outcome (SAQ's stats).",
        labels=["queue", "worker", "outcome"],
    )
    for queue in queues:
        status = await status_of(queue, describe_broker(queue))
        for state in ("queued", "active", "scheduled"):
            jobs.add_metric([queue.name, state], getattr(status, state))
        workers.add_metric([queue.name], len(status.workers))
        oldest.add_metric([queue.name], await oldest_queued_age_s(queue))
    for queue in queues:
        info = await queue.info()
        for worker_id, worker in (info.get("workers") or {}).items():
            stats: dict[str, Any] = dict(worker.get("stats") or {})
            for outcome in ("complete", "failed", "retried", "aborted"):
                totals.add_metric([queue.name, worker_id, outcome], float(stats.get(outcome) or 0))
    return [jobs, workers, oldest, totals]


def process_registry() -> CollectorRegistry:
    """This process's job metrics, or the sum over every process writing to ``PROMETHEUS_MULTIPROC_DIR``."""
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


async def render_metrics(queues: Sequence[Queue]) -> bytes:
    """The Prometheus text of the queues' metrics (from their brokers) and this process's job metrics."""
    from prometheus_client import CollectorRegistry, generate_latest

    job_metrics()  # so the job metrics are listed even before the first job
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(await queue_families(queues)))
    return generate_latest(registry) + generate_latest(process_registry())


def serve_job_metrics(port: int, *, several_processes: bool) -> None:
    """Serve this process's job metrics on ``port`` (a thread), or with ``several_processes`` those of
    every worker child: children started afterwards write them to ``PROMETHEUS_MULTIPROC_DIR``."""
    require_prometheus()
    if several_processes and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        import atexit
        import shutil
        import tempfile

        directory = tempfile.mkdtemp(prefix="litestar-saq-metrics-")
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory  # inherited by the children (any start method)
    from prometheus_client import start_http_server

    start_http_server(port, registry=process_registry())
