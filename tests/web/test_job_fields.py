"""Every field of a job that the dashboard sends is a string, a number or null, on every backend.

SAQ's renderer takes an object where it expects text for element data, so an object in any field
(``{"props": {"innerHTML": ...}}``) would put markup into the page: the browser test plants the same
payloads and checks that no script runs.
"""

from __future__ import annotations

from typing import Any

from saq.job import Status

from litestar_saq import SAQPlugin
from tests.web.apps import HOSTILE as PAYLOAD
from tests.web.apps import plant_hostile_job
from tests.web.conftest import Dashboard


def assert_flat(job: dict[str, Any]) -> None:
    nested = {
        name: value for name, value in job.items() if not isinstance(value, (str, int, float, type(None)))
    }
    assert nested == {}
    assert not any(isinstance(value, bool) for value in job.values())


async def test_every_job_field_is_flat_in_every_view(dashboard: Dashboard) -> None:
    assert dashboard.app is not None
    queue = dashboard.app.plugins.get(SAQPlugin).task_queues.get(dashboard.queue_name)
    name = dashboard.queue_name
    key = f"hostile-{name}"  # SAQ's PostgreSQL table keys jobs by key alone, across queues
    await plant_hostile_job(queue, key)

    listed = (await dashboard.client.get(f"/saq/api/queues/{name}")).json()["queue"]
    (job,) = listed["jobs"]
    assert_flat(job)
    assert job["function"] == repr(PAYLOAD)
    assert job["kwargs"] == repr({"props": PAYLOAD["props"]})

    shown = (await dashboard.client.get(f"/saq/api/queues/{name}/jobs/{key}")).json()["job"]
    assert_flat(shown)
    for field in ("function", "error", "result", "meta"):
        assert shown[field] == repr(PAYLOAD), field
    assert shown["progress"] is None  # a number or nothing: SAQ's <progress> refuses anything else
    assert shown["status"] == Status.QUEUED.value

    found = (await dashboard.client.get("/saq/api/jobs", params={"key": key})).json()["jobs"]
    assert_flat(found[0]["job"])

    for info in (await dashboard.client.get("/saq/api/queues")).json()["queues"]:
        assert all(
            isinstance(value, (str, int, float, type(None)))
            for key, value in info.items()
            if key != "workers" and key != "jobs"
        )


async def test_failed_hostile_jobs_are_flat_in_the_dead_letter_list(dashboard: Dashboard) -> None:
    assert dashboard.app is not None
    queue = dashboard.app.plugins.get(SAQPlugin).task_queues.get(dashboard.queue_name)
    await plant_hostile_job(queue, "hostile-dead")
    job = await queue.job("hostile-dead")
    assert job is not None
    await queue.finish(job, Status.FAILED, error=PAYLOAD)  # type: ignore[arg-type]
    listed = await dashboard.client.get(f"/saq/api/queues/{dashboard.queue_name}/jobs")
    (dead,) = listed.json()["jobs"]
    assert_flat(dead)
    assert dead["error"] == repr(PAYLOAD)
