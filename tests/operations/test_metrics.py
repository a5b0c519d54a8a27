"""``GET /saq/metrics``: every documented metric is scraped, with the queue as a label; queue gauges come
from the broker; a scrape with 10,000 queued jobs is timed."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from litestar import Litestar, post
from litestar.testing import AsyncTestClient

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin, TaskQueues
from litestar_saq.exceptions import MissingExtraError
from tests.support.brokers import DATABASE_URL, REDIS_URL, backend_queue
from tests.support.poll import wait_until
from tests.support.procs import CliProcess, free_port

DOCUMENTED = (
    "litestar_saq_queue_jobs",
    "litestar_saq_queue_workers",
    "litestar_saq_queue_oldest_job_age_seconds",
    "litestar_saq_worker_jobs_total",
    "litestar_saq_job_duration_seconds_bucket",
    "litestar_saq_job_start_latency_seconds_bucket",
    "litestar_saq_jobs_started_total",
    "litestar_saq_jobs_finished_total",
)
DSNS = {"redis": REDIS_URL, "asyncpg": DATABASE_URL, "memory": "memory://"}


async def work(ctx: dict[str, Any], *, fail: bool = False) -> str:
    if fail:
        raise RuntimeError("failing on purpose")
    return "done"


def metric_lines(text: str, name: str, queue: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(name) and f'queue="{queue}"' in line]


@pytest.mark.parametrize("backend", list(DSNS))
async def test_every_metric_is_scraped_with_its_queue(backend: str, queue_name: str) -> None:
    plugin = SAQPlugin(
        SAQConfig(
            web_enabled=True,
            queue_configs=[
                QueueConfig(
                    name=queue_name,
                    dsn=DSNS[backend],
                    tasks=[work],
                    timers={"worker_info": 1},
                    separate_process=False,
                )
            ],
        )
    )

    @post("/run-jobs")
    async def run_jobs(task_queues: TaskQueues) -> str:
        queue = task_queues.get(queue_name)
        await queue.enqueue("work", fail=True, retries=1)
        return str(await queue.apply("work", timeout=10))

    app = Litestar([run_jobs], plugins=[plugin])
    async with AsyncTestClient(app) as client:
        assert (await client.post("/run-jobs")).text == "done"

        async def scraped() -> str | None:
            response = await client.get("/saq/metrics")
            assert response.status_code == 200
            text = response.text
            missing = [name for name in DOCUMENTED if not metric_lines(text, name, queue_name)]
            return None if missing else text

        text = await wait_until(scraped, timeout=15, what="every metric of the queue")
        assert response_type_ok(await client.get("/saq/metrics"))
        assert re.search(
            rf'litestar_saq_jobs_finished_total{{function="work",outcome="failed",queue="{queue_name}"}} 1.0',
            text,
        ) or re.search(rf'outcome="failed",queue="{queue_name}"', text)


def response_type_ok(response: Any) -> bool:
    return str(response.headers["content-type"]).startswith("text/plain; version=0.0.4")


def test_metrics_off_or_missing_extra(monkeypatch: pytest.MonkeyPatch, queue_name: str) -> None:
    config = SAQConfig(
        web_enabled=True,
        web_metrics=False,
        queue_configs=[QueueConfig(name=queue_name, dsn="memory://", separate_process=False)],
    )
    app = Litestar(plugins=[SAQPlugin(config)])
    assert not any(route.path.endswith("/metrics") for route in app.routes)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "prometheus_client" else real_find_spec(name, *a),
    )
    with pytest.raises(MissingExtraError, match=r"litestar-saq\[prometheus\]"):
        SAQConfig(
            web_enabled=True,
            web_metrics=True,
            queue_configs=[QueueConfig(name=queue_name, dsn="memory://", separate_process=False)],
        )
    app = Litestar(
        plugins=[
            SAQPlugin(
                SAQConfig(
                    web_enabled=True,
                    queue_configs=[QueueConfig(name=queue_name, dsn="memory://", separate_process=False)],
                )
            )
        ]
    )
    assert not any(route.path.endswith("/metrics") for route in app.routes)


@pytest.mark.parametrize("backend", ["redis", "asyncpg"])
async def test_scrape_with_10k_queued_jobs(backend: str, queue_name: str) -> None:
    from litestar_saq.metrics import render_metrics

    async with backend_queue(backend, queue_name) as queue:
        for start in range(0, 10_000, 100):
            await asyncio.gather(
                *(queue.enqueue("work", key=f"k{index}") for index in range(start, start + 100))
            )
        started = time.perf_counter()
        text = (await render_metrics([queue])).decode()
        elapsed = time.perf_counter() - started
        print(f"scrape with 10k queued jobs on {backend}: {elapsed * 1000:.0f} ms")
        assert f'litestar_saq_queue_jobs{{queue="{queue_name}",state="queued"}} 10000.0' in text
        assert elapsed < 2.0


async def test_metrics_port_sums_the_worker_processes(
    ops_env: dict[str, str], cli: Callable[..., CliProcess], queue_name: str
) -> None:
    port = free_port()
    supervisor = cli(["workers", "run", "--process", "--workers", "2", "--metrics-port", str(port)], ops_env)
    await wait_until(lambda: len(supervisor.worker_pids()) == 2, timeout=30, what="two worker processes")
    async with backend_queue("redis", queue_name) as queue:
        await asyncio.gather(*(queue.enqueue("noop", key=f"n{index}") for index in range(200)))

        def finished() -> float:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                    text = response.read().decode()
            except OSError:
                return 0
            return sum(
                float(line.rsplit(" ", 1)[1])
                for line in metric_lines(text, "litestar_saq_jobs_finished_total", queue_name)
            )

        await wait_until(lambda: finished() == 200, timeout=30, what="200 finished jobs in the metrics")
