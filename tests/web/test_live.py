"""The live dashboard's event streams over HTTP, on memory, Redis and PostgreSQL (asyncpg).

Streams are read from a real uvicorn server in the test's loop (httpx's ASGI transport buffers whole
responses, so it cannot read a stream).
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin
from litestar_saq.exceptions import SAQConfigError
from tests.support.poll import wait_until
from tests.support.procs import CliProcess, app_env_for_test, cli_processes, free_port
from tests.support.redis_server import PrivateRedis
from tests.web import tasks
from tests.web.apps import TOKEN, make_app, purge, token_guard
from tests.web.conftest import Dashboard
from tests.web.live_support import hub_of, live_tasks, open_stream, serve_in_loop
from tests.web.tasks import STEP_GATES


async def test_event_stream_sends_counts_and_new_failures(backend: str, queue_name: str) -> None:
    app = make_app(queue_name, backend, web_live_interval_s=0.2)
    try:
        async with serve_in_loop(app) as client:
            live = Dashboard(app=app, client=client, queue_name=queue_name)
            async with open_stream(client, "/saq/api/events", queue=queue_name) as stream:
                headers = stream.response.headers
                assert headers["x-accel-buffering"] == "no"
                assert headers["cache-control"] == "no-cache"
                assert headers["x-content-type-options"] == "nosniff"
                first = await stream.wait_for(lambda e: e.event == "queues", what="the queue counts")
                assert first.data["queues"] == [
                    {"name": queue_name, "queued": 0, "active": 0, "scheduled": 0, "workers": 1}
                ]
                await live.enqueue("echo", f"{queue_name}-later", options={"scheduled": 4_000_000_000})
                await stream.wait_for(
                    lambda e: e.event == "queues" and e.data["queues"][0]["scheduled"] == 1,
                    what="the scheduled job counted",
                )
                await live.enqueue("flaky", f"{queue_name}-fails", label="x")
                failures = await stream.wait_for(
                    lambda e: e.event == "failures" and e.data["total"] == 1, what="the failed job"
                )
                assert failures.data["queue"] == queue_name
                assert failures.data["jobs"][0]["key"] == f"{queue_name}-fails"
                assert failures.data["jobs"][0]["status"] == "failed"
                events = [event.event for event in stream.seen]
                assert {"queues", "workers", "failures", "throughput"} <= set(events)
    finally:
        await purge(backend, queue_name)


async def test_job_stream_follows_progress_and_meta(backend: str, queue_name: str) -> None:
    app = make_app(queue_name, backend, web_live_interval_s=0.1)
    key = f"{queue_name}-steps"
    try:
        async with serve_in_loop(app) as client:
            live = Dashboard(app=app, client=client, queue_name=queue_name)
            await live.enqueue("stepper", key, steps=3, options={"timeout": 60})
            async with open_stream(client, "/saq/api/jobs/events", queue=queue_name, key=key) as stream:
                await stream.wait_for(
                    lambda e: e.event == "job" and e.data["job"]["status"] == "active", what="the job running"
                )
                delays = []
                for step in (1, 2, 3):
                    started = time.monotonic()
                    STEP_GATES[key] = step
                    meta = repr({"step": step})
                    event = await stream.wait_for(
                        lambda e, meta=meta: e.event == "job" and e.data["job"]["meta"] == meta, what=meta
                    )
                    delays.append(time.monotonic() - started)
                    assert event.data["job"]["progress"] == pytest.approx(step / 3)
                done = stream.seen[-1]  # the last step may finish the job within one read interval
                if done.data["job"]["status"] != "complete":
                    done = await stream.wait_for(
                        lambda e: e.event == "job" and e.data["job"]["status"] == "complete", what="done"
                    )
                assert done.data["job"]["result"] == repr("3 steps")
                print(f"{backend}: progress update -> event: {[round(d, 3) for d in delays]} s")
                # Only changes are sent: no two consecutive job events are the same.
                job_events = [event.data for event in stream.seen if event.event == "job"]
                assert all(a != b for a, b in itertools.pairwise(job_events))
    finally:
        STEP_GATES.pop(key, None)
        await purge(backend, queue_name)


async def test_unknown_job_or_queue_is_a_json_404(dashboard: Dashboard) -> None:
    queue = dashboard.queue_name
    response = await dashboard.client.get("/saq/api/jobs/events", params={"queue": queue, "key": "nope"})
    assert response.status_code == 404
    assert "nope" in response.json()["error"]
    response = await dashboard.client.get("/saq/api/events", params={"queue": "no-such-queue"})
    assert response.status_code == 404
    assert "no-such-queue" in response.json()["error"]


@pytest.mark.parametrize("backend", ["memory"])
async def test_streams_are_guarded_and_never_redirected_to_login(
    dashboard_factory: Callable[..., Any], backend: str
) -> None:
    dashboard = await dashboard_factory(web_guards=[token_guard], web_login_url="/login")
    for accept in ("text/event-stream", "text/html,application/xhtml+xml"):
        response = await dashboard.client.get("/saq/api/events", headers={"Accept": accept})
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "send an X-Token header"
        assert "location" not in response.headers
    response = await dashboard.client.get("/saq/api/events", headers={"X-Token": "wrong"})
    assert response.status_code == 403
    assert response.json()["error"] == "wrong token"
    # A page of another site cannot open streams on a logged-in user's credentials.
    response = await dashboard.client.get(
        "/saq/api/events",
        headers={"X-Token": TOKEN, "Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert "cross-site request refused" in response.json()["error"]
    app = make_app(dashboard.queue_name, backend, web_guards=[token_guard], web_login_url="/login")
    async with serve_in_loop(app) as client:
        client.headers["X-Token"] = TOKEN
        async with open_stream(client, "/saq/api/events") as stream:
            await stream.wait_for(lambda e: e.event == "queues", what="the counts, logged in")


@pytest.mark.parametrize("backend", ["memory"])
async def test_stream_cap_answers_503_and_frees_places(queue_name: str, backend: str) -> None:
    app = make_app(queue_name, backend, web_live_max_streams=2)
    hub = hub_of(app)
    async with serve_in_loop(app) as client:
        path = "/saq/api/events"
        async with open_stream(client, path) as one, open_stream(client, path) as two:
            await one.wait_for(lambda e: e.event == "queues")
            await two.wait_for(lambda e: e.event == "queues")
            refused = await client.get("/saq/api/events")
            assert refused.status_code == 503
            assert "web_live_max_streams=2" in refused.json()["error"]
            assert refused.headers["retry-after"] == "10"
            assert len(hub.feeds) == 1, "two streams of the same thing share one reader"
        await wait_until(lambda: hub.streams == 0, what="the closed streams to free their places")
        await wait_until(lambda: not live_tasks(), what="the reader to stop with its last stream")
        async with open_stream(client, "/saq/api/events") as again:
            await again.wait_for(lambda e: e.event == "queues")


@pytest.mark.parametrize("backend", ["memory"])
async def test_heartbeats_and_maximum_lifetime(queue_name: str, backend: str) -> None:
    app = make_app(queue_name, backend, web_live_heartbeat_s=0.2, web_live_max_stream_s=1.5)
    async with serve_in_loop(app) as client:
        started = time.monotonic()
        async with open_stream(client, "/saq/api/events") as stream:
            first = await stream.next()
            assert first is not None and first.comment == "litestar-saq live dashboard"
            await stream.wait_for(lambda e: e.comment == "heartbeat", what="a heartbeat")
            end = await stream.wait_for(lambda e: e.event == "end", timeout=5, what="the end of the stream")
            assert "web_live_max_stream_s" in end.data["reason"]
            assert await stream.next() is None
            lifetime = time.monotonic() - started
            assert 1.4 < lifetime < 4, lifetime
        assert sum(event.comment == "heartbeat" for event in stream.seen) >= 3


async def test_readers_are_shared_between_streams(queue_name: str) -> None:
    """Ten streams of the same queue cost the broker what one does."""
    app = make_app(queue_name, "memory", web_live_interval_s=0.1)
    hub = hub_of(app)
    async with serve_in_loop(app) as client:
        readers = {}
        async with open_stream(client, "/saq/api/events") as first:
            await first.wait_for(lambda e: e.event == "queues")
            start = hub.reads()
            await asyncio.sleep(1.0)  # the window in which reads are counted
            readers[1] = hub.reads() - start
            streams = [open_stream(client, "/saq/api/events") for _ in range(9)]
            opened = [await stream.__aenter__() for stream in streams]
            try:
                for reader in opened:
                    await reader.wait_for(lambda e: e.event == "queues")
                assert hub.streams == 10
                start = hub.reads()
                await asyncio.sleep(1.0)
                readers[10] = hub.reads() - start
            finally:
                for stream in reversed(streams):
                    await stream.__aexit__(None, None, None)
    print(f"broker reads per second: 1 stream {readers[1]}, 10 streams {readers[10]}")
    assert readers[10] <= readers[1] + 2, readers


async def test_app_shutdown_ends_open_streams_promptly(queue_name: str) -> None:
    """The app's lifespan ending (as Litestar's test client or hypercorn do it) ends open streams."""
    app = make_app(queue_name, "memory", web_live_heartbeat_s=60)
    sent: list[bytes] = []
    first_event = asyncio.Event()
    complete = asyncio.Event()

    async def receive() -> dict[str, Any]:
        # The client never leaves; as ASGI servers do, say "disconnect" once the response is complete.
        await complete.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            sent.append(message.get("body", b""))
            if b"event: queues" in message.get("body", b""):
                first_event.set()
            if not message.get("more_body", False):
                complete.set()

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": "/saq/api/events", "raw_path": b"/saq/api/events", "query_string": b"", "root_path": "",
        "headers": [(b"host", b"testserver"), (b"accept", b"text/event-stream")],
        "client": ("127.0.0.1", 1), "server": ("testserver", 80),
    }  # fmt: skip
    async with app.lifespan():
        streams = [asyncio.create_task(app(dict(scope), receive, send)) for _ in range(3)]  # type: ignore[arg-type]
        await asyncio.wait_for(first_event.wait(), 10)
        assert hub_of(app).streams == 3
        started = time.monotonic()
    done, _ = await asyncio.wait(streams, timeout=5)
    elapsed = time.monotonic() - started
    assert len(done) == 3, "open streams outlived the app's shutdown"
    assert elapsed < 2, f"the app took {elapsed:.2f} s to shut down with open streams"
    assert b"the server is shutting down" in b"".join(sent)
    assert not live_tasks(), "a stream reader outlived the app"
    assert hub_of(app).streams == 0


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Callable[..., CliProcess]]:
    """``litestar run`` processes of ``tests.web.live_app``; killed when the test ends."""
    yield from cli_processes(tmp_path, "tests.web.live_app:app")


async def test_server_stops_promptly_on_sigterm_with_open_streams(
    cli: Callable[..., CliProcess], queue_name: str, redis_url: str
) -> None:
    """``litestar run`` (uvicorn waits for open responses before the app's shutdown) stops at once."""
    port = free_port()
    server = cli(["run", "--port", str(port)], app_env_for_test(queue_name, redis_url))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:

        async def up() -> bool:
            try:
                return (await client.get("/saq/api/queues")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_until(up, timeout=30, what="the server to answer")
        path = "/saq/api/events"
        async with open_stream(client, path) as one, open_stream(client, path) as two:
            await one.wait_for(lambda e: e.event == "queues")
            await two.wait_for(lambda e: e.event == "queues")
            started = time.monotonic()
            server.send(signal.SIGTERM)
            end = await one.wait_for(lambda e: e.event == "end", timeout=5, what="the stream to end")
            assert end.data["reason"] == "the server is shutting down"
            await server.wait_exit(timeout=10)
            elapsed = time.monotonic() - started
    print(f"server stopped {elapsed:.2f} s after SIGTERM with 2 open streams")
    # web_live_max_stream_s is 120 s: without the hub's signal handler uvicorn would wait that long.
    assert elapsed < 5, f"{elapsed:.2f} s"
    assert "Traceback" not in server.log(), server.log()


async def test_stream_reports_a_broker_outage_and_the_recovery(tmp_path: Path, queue_name: str) -> None:
    redis = PrivateRedis(tmp_path)
    redis.start()
    try:
        queue_config = QueueConfig(name=queue_name, dsn=redis.url, tasks=[tasks.echo], separate_process=False)
        config = SAQConfig(queue_configs=[queue_config], web_enabled=True, web_live_interval_s=0.1)
        app = Litestar([], plugins=[SAQPlugin(config)])
        async with serve_in_loop(app) as client, open_stream(client, "/saq/api/events") as stream:
            await stream.wait_for(lambda e: e.event == "queues", what="the counts")
            redis.stop()
            down = await stream.wait_for(lambda e: e.event == "broker", what="the outage")
            assert down.data["error"] == "reading queue counts failed (ConnectionError); see the server log"
            redis.start()
            await stream.wait_for(lambda e: e.event == "broker" and e.data["error"] is None, what="recovery")
    finally:
        redis.stop()


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("web_live_interval_s", 0),
        ("web_live_heartbeat_s", -1),
        ("web_live_max_stream_s", "long"),
        ("web_live_max_streams", 0),
        ("web_live_max_streams", 2.5),
    ],
)
def test_live_settings_are_checked(setting: str, value: Any) -> None:
    with pytest.raises(SAQConfigError, match=f"SAQConfig: {setting}={value!r} must be"):
        SAQConfig(**{setting: value})
