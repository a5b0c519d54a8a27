"""The dashboard's JSON API and pages without a browser, on every backend."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.poll import wait_until
from tests.web.conftest import Dashboard

pytestmark = pytest.mark.asyncio


async def test_queue_list_queue_and_job(dashboard: Dashboard) -> None:
    await dashboard.enqueue("echo", "cron:echo one", value={"answer": 42})
    await dashboard.wait_for_status("cron:echo one", "complete")

    listing = (await dashboard.client.get("/saq/api/queues")).json()
    (queue,) = [queue for queue in listing["queues"] if queue["name"] == dashboard.queue_name]
    assert queue["jobs"] == []
    assert {"queued", "active", "scheduled", "workers"} <= set(queue)

    shown = await dashboard.client.get(f"/saq/api/queues/{dashboard.queue_name}")
    assert shown.status_code == 200
    assert shown.json()["queue"]["name"] == dashboard.queue_name

    # The key has ':' and ' ', which SAQ's app.js puts into the path as they are.
    job = await dashboard.client.get(f"/saq/api/queues/{dashboard.queue_name}/jobs/cron:echo one")
    assert job.status_code == 200
    body = job.json()["job"]
    assert body["key"] == "cron:echo one"
    assert body["status"] == "complete"
    assert body["kwargs"] == repr({"value": {"answer": 42}})
    assert body["result"] == repr({"answer": 42})


async def test_unknown_queue_or_job_is_404_naming_it(dashboard: Dashboard) -> None:
    name = dashboard.queue_name
    for method, path, named in [
        ("GET", "/saq/api/queues/no-such-queue", "no-such-queue"),
        ("GET", f"/saq/api/queues/{name}/jobs/no-such-job", "no-such-job"),
        ("POST", f"/saq/api/queues/{name}/jobs/no-such-job/retry", "no-such-job"),
        ("POST", f"/saq/api/queues/{name}/jobs/no-such-job/abort", "no-such-job"),
        ("POST", "/saq/api/queues/no-such-queue/jobs/x/retry", "no-such-queue"),
        ("GET", "/saq/api/queues/no-such-queue/jobs", "no-such-queue"),
        ("GET", "/saq/api/queues/no-such-queue/throughput", "no-such-queue"),
        ("GET", "/saq/api/jobs?key=no-such-job", "no-such-job"),
    ]:
        response = await dashboard.client.request(method, path)
        assert response.status_code == 404, (path, response.text)
        assert response.headers["content-type"].startswith("application/json")
        assert named in response.json()["error"], (path, response.text)


async def test_retry_from_saq_ui_api_runs_the_job_again(dashboard: Dashboard) -> None:
    await dashboard.enqueue("flaky", "flaky-1", label="one")
    await dashboard.wait_for_status("flaky-1", "failed")

    response = await dashboard.client.post(f"/saq/api/queues/{dashboard.queue_name}/jobs/flaky-1/retry")
    assert response.status_code == 202
    assert response.json() == {}
    job = await dashboard.wait_for_status("flaky-1", "complete")
    assert job["attempts"] == 2
    assert job["result"] == "one ok on attempt 2"


async def test_abort_from_saq_ui_api(dashboard: Dashboard) -> None:
    await dashboard.enqueue("sleeper", "sleepy", seconds=30)
    await dashboard.wait_for_status("sleepy", "active")

    response = await dashboard.client.post(f"/saq/api/queues/{dashboard.queue_name}/jobs/sleepy/abort")
    assert response.status_code == 202
    assert response.json() == {}
    await dashboard.wait_for_status("sleepy", "aborted")


async def test_dead_letters_and_bulk_retry(dashboard: Dashboard) -> None:
    keys = [f"dead-{index}" for index in range(3)]
    for key in keys:
        await dashboard.enqueue("flaky", key, label=key)
    await dashboard.enqueue("echo", "alive", value=1)
    for key in keys:
        await dashboard.wait_for_status(key, "failed")
    await dashboard.wait_for_status("alive", "complete")

    listed = await dashboard.client.get(f"/saq/api/queues/{dashboard.queue_name}/jobs?status=failed,aborted")
    assert listed.status_code == 200
    body = listed.json()
    assert sorted(job["key"] for job in body["jobs"]) == keys
    assert body["total"] == 3
    assert all("fails on attempt 1" in job["error"] for job in body["jobs"])
    finished = [job["completed"] for job in body["jobs"]]
    assert finished == sorted(finished, reverse=True)  # newest first

    retried = await dashboard.client.post(
        f"/saq/api/queues/{dashboard.queue_name}/retry-failed", json={"keys": [*keys, "alive", "gone"]}
    )
    assert retried.status_code == 202
    assert sorted(retried.json()["retried"]) == keys
    assert {item["key"] for item in retried.json()["skipped"]} == {"alive", "gone"}
    for key in keys:
        job = await dashboard.wait_for_status(key, "complete")
        assert job["attempts"] == 2
    listed = await dashboard.client.get(f"/saq/api/queues/{dashboard.queue_name}/jobs")
    assert listed.json()["jobs"] == []


async def test_bulk_retry_without_keys_retries_every_failed_job(dashboard: Dashboard) -> None:
    await dashboard.enqueue("flaky", "all-1")
    await dashboard.enqueue("flaky", "all-2")
    await dashboard.wait_for_status("all-1", "failed")
    await dashboard.wait_for_status("all-2", "failed")

    retried = await dashboard.client.post(f"/saq/api/queues/{dashboard.queue_name}/retry-failed", json={})
    assert retried.status_code == 202
    assert sorted(retried.json()["retried"]) == ["all-1", "all-2"]
    await dashboard.wait_for_status("all-1", "complete")
    await dashboard.wait_for_status("all-2", "complete")


async def test_find_a_job_whose_key_a_path_cannot_carry(dashboard: Dashboard) -> None:
    key = "report/2024?part=1#a b"
    await dashboard.enqueue("echo", key, value="x")
    await dashboard.wait_for_status(key, "complete")

    found = await dashboard.client.get("/saq/api/jobs", params={"key": key})
    assert found.status_code == 200
    (match,) = found.json()["jobs"]
    assert match["queue"] == dashboard.queue_name
    assert match["job"]["key"] == key
    params = {"key": key, "queue": dashboard.queue_name}
    one_queue = await dashboard.client.get("/saq/api/jobs", params=params)
    assert one_queue.json() == found.json()


async def test_throughput_counts_completed_and_failed_per_minute(dashboard: Dashboard) -> None:
    await dashboard.enqueue("echo", "fine-1")
    await dashboard.enqueue("echo", "fine-2")
    await dashboard.enqueue("flaky", "bad-1")
    await dashboard.wait_for_status("fine-1", "complete")
    await dashboard.wait_for_status("fine-2", "complete")
    await dashboard.wait_for_status("bad-1", "failed")

    response = await dashboard.client.get(f"/saq/api/queues/{dashboard.queue_name}/throughput")
    assert response.status_code == 200
    body = response.json()
    assert len(body["complete"]) == len(body["failed"]) == 30
    assert sum(body["complete"]) == 2
    assert sum(body["failed"]) == 1
    # The jobs just finished, so they fall in the last (current) or, at a minute boundary, the one before.
    assert sum(body["complete"][-2:]) == 2

    bad = await dashboard.client.get(f"/saq/api/queues/{dashboard.queue_name}/throughput?minutes=0")
    assert bad.status_code == 400
    assert "minutes" in bad.json()["error"]


async def test_workers_are_listed_with_their_last_heartbeat(dashboard: Dashboard) -> None:
    async def listed() -> list[dict[str, object]]:
        response = await dashboard.client.get("/saq/api/workers")
        return [worker for worker in response.json()["workers"] if worker["queue"] == dashboard.queue_name]

    (worker,) = await wait_until(listed)
    body = (await dashboard.client.get("/saq/api/workers")).json()
    assert isinstance(worker["last_heartbeat"], int)
    # The test app's workers report every second.
    assert body["now"] - 5_000 <= worker["last_heartbeat"] <= body["now"] + 1_000
    assert worker["metadata"]["pid"] > 0
    assert {"complete", "failed", "retried", "aborted", "uptime"} <= set(worker["stats"])


async def test_health(dashboard: Dashboard) -> None:
    async def healthy() -> Any:
        response = await dashboard.client.get("/saq/health")
        return response if response.status_code == 200 else None

    response = await wait_until(healthy, what="the dashboard's worker to report")
    body = response.json()
    assert body["healthy"] is True and body["problems"] == []
    (queue,) = [queue for queue in body["queues"] if queue["name"] == dashboard.queue_name]
    assert queue["live_workers"] >= 1 and queue["newest_heartbeat_age_s"] < 60


async def test_queue_view_caps_its_job_list(dashboard: Dashboard) -> None:
    # Scheduled far ahead, so they stay incomplete and all would be listed without a cap.
    for index in range(110):
        await dashboard.enqueue("echo", f"later-{index}", options={"scheduled": 4_000_000_000})
    response = await dashboard.client.get(f"/saq/api/queues/{dashboard.queue_name}")
    assert response.status_code == 200
    queue = response.json()["queue"]
    assert queue["scheduled"] == 110
    assert 10 < len(queue["jobs"]) <= 100


async def test_queue_view_sends_job_arguments_as_text(dashboard: Dashboard) -> None:
    # SAQ's renderer would take a raw {"props": {"innerHTML": ...}} for element properties.
    props = {"innerHTML": "<b id='pwned'>x</b>"}
    await dashboard.enqueue("echo", "later:props", props=props, options={"scheduled": 4_000_000_000})
    response = await dashboard.client.get(f"/saq/api/queues/{dashboard.queue_name}")
    (job,) = response.json()["queue"]["jobs"]
    assert job["kwargs"] == repr({"props": props})


async def test_bulk_retry_refuses_unfinished_jobs(dashboard: Dashboard) -> None:
    response = await dashboard.client.post(
        f"/saq/api/queues/{dashboard.queue_name}/retry-failed", json={"statuses": ["active"]}
    )
    assert response.status_code == 400
    assert "finished jobs only" in response.json()["error"]
