"""Cross-site writes are refused (403 naming why), header-less clients and the app's own pages are not;
with and without the app's CSRFConfig. Bulk retry is capped and says so."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from litestar.config.csrf import CSRFConfig

from litestar_saq import SAQConfigError, SAQPlugin
from litestar_saq.web import ops
from tests.web.apps import make_app
from tests.web.conftest import Dashboard

OWN = "http://testserver"


@pytest.fixture
def backend() -> str:
    """The checks run before any broker call."""
    return "memory"


def actions(queue: str) -> list[tuple[str, dict[str, Any] | None]]:
    """Every state-changing route, with a body it accepts."""
    return [
        (f"/saq/api/queues/{queue}/jobs/victim/retry", None),
        (f"/saq/api/queues/{queue}/jobs/victim/abort", None),
        (f"/saq/api/queues/{queue}/retry-failed", {"keys": ["victim"]}),
    ]


async def failed_victim(dashboard: Dashboard) -> None:
    await dashboard.enqueue("flaky", "victim")
    await dashboard.wait_for_status("victim", "failed")


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({"Origin": "http://evil.example"}, "http://evil.example"),
        ({"Origin": "http://testserver:8001"}, "testserver:8001"),  # same host, another port
        ({"Origin": "null"}, "null"),  # sandboxed frames, data: URLs
        ({"Referer": "http://evil.example/page"}, "evil.example"),
        ({"Sec-Fetch-Site": "cross-site"}, "Sec-Fetch-Site: cross-site"),
        ({"Sec-Fetch-Site": "same-site", "Origin": "http://jobs.testserver"}, "Sec-Fetch-Site: same-site"),
        ({"Sec-Fetch-Site": "cross-site", "Origin": OWN}, "Sec-Fetch-Site: cross-site"),
    ],
)
async def test_cross_site_writes_are_refused(dashboard: Dashboard, headers: dict[str, str], why: str) -> None:
    await failed_victim(dashboard)
    for path, body in actions(dashboard.queue_name):
        response = await dashboard.client.post(path, json=body, headers=headers)
        assert response.status_code == 403, (path, response.text)
        error = response.json()["error"]
        assert "cross-site request refused" in error and why in error, error
    assert (await dashboard.job("victim"))["attempts"] == 1  # nothing was retried


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
async def test_form_encoded_writes_are_refused(dashboard: Dashboard, content_type: str) -> None:
    await failed_victim(dashboard)
    for path, _ in actions(dashboard.queue_name):
        response = await dashboard.client.post(path, content=b"x=1", headers={"Content-Type": content_type})
        assert response.status_code == 415, (path, response.text)
        assert "Content-Type: application/json" in response.json()["error"]
    assert (await dashboard.job("victim"))["attempts"] == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},  # curl, scripts: no browser marks, so no victim's cookies either
        {"Origin": OWN},
        {"Referer": f"{OWN}/saq/ops"},
        {"Sec-Fetch-Site": "same-origin", "Origin": OWN},
        {"Sec-Fetch-Site": "same-origin"},
    ],
)
async def test_same_origin_and_header_less_writes_work(dashboard: Dashboard, headers: dict[str, str]) -> None:
    await failed_victim(dashboard)
    path = f"/saq/api/queues/{dashboard.queue_name}/jobs/victim/retry"
    response = await dashboard.client.post(path, headers=headers)
    assert response.status_code == 202, response.text
    await dashboard.wait_for_status("victim", "complete")


async def test_trusted_origins_may_write(dashboard_factory: Callable[..., Any]) -> None:
    dashboard = await dashboard_factory(web_trusted_origins=["https://ops.example.com"])
    await failed_victim(dashboard)
    path = f"/saq/api/queues/{dashboard.queue_name}/jobs/victim/retry"
    other = await dashboard.client.post(path, headers={"Origin": "https://evil.example.com"})
    assert other.status_code == 403
    trusted = await dashboard.client.post(
        path, headers={"Origin": "https://OPS.example.com", "Sec-Fetch-Site": "cross-site"}
    )
    assert trusted.status_code == 202, trusted.text


def test_a_trusted_origin_that_is_no_origin_fails_clearly(queue_name: str) -> None:
    with pytest.raises(SAQConfigError, match=r"web_trusted_origins: 'ops.example.com' is no origin"):
        make_app(queue_name, "memory", web_trusted_origins=["ops.example.com"])


async def test_with_the_apps_csrf_config_both_checks_apply(dashboard_factory: Callable[..., Any]) -> None:
    csrf = CSRFConfig(secret="s" * 32, exclude=["/test"])
    dashboard = await dashboard_factory(app_options={"csrf_config": csrf})
    await failed_victim(dashboard)
    await dashboard.client.get("/saq/")  # sets the CSRF cookie
    token = dashboard.client.cookies[csrf.cookie_name]
    path = f"/saq/api/queues/{dashboard.queue_name}/jobs/victim/retry"
    # A valid CSRF token does not make a cross-site request acceptable...
    forged = await dashboard.client.post(
        path,
        headers={csrf.header_name: token, "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert forged.status_code == 403
    assert "cross-site request refused" in forged.json()["error"]
    # ...and Litestar's CSRF check still wants its token from same-origin pages.
    assert (await dashboard.client.post(path, headers={"Origin": OWN})).status_code == 403
    ok = await dashboard.client.post(path, headers={csrf.header_name: token, "Origin": OWN})
    assert ok.status_code == 202, ok.text


async def test_bulk_retry_refuses_more_keys_than_its_limit(dashboard: Dashboard) -> None:
    path = f"/saq/api/queues/{dashboard.queue_name}/retry-failed"
    keys = [f"k{index}" for index in range(ops.BULK_RETRY_LIMIT + 1)]
    too_many = await dashboard.client.post(path, json={"keys": keys})
    assert too_many.status_code == 400
    assert f"at most {ops.BULK_RETRY_LIMIT} keys" in too_many.json()["error"]
    # At the limit every key is looked up: none is reported missing without having been looked for.
    await failed_victim(dashboard)
    at_limit = await dashboard.client.post(path, json={"keys": [*keys[: ops.BULK_RETRY_LIMIT - 1], "victim"]})
    assert at_limit.status_code == 202
    body = at_limit.json()
    assert body["retried"] == ["victim"]
    assert len(body["skipped"]) == ops.BULK_RETRY_LIMIT - 1
    assert body["limit"] == ops.BULK_RETRY_LIMIT


async def test_bulk_retry_reruns_complete_jobs_only_when_asked(dashboard: Dashboard) -> None:
    await dashboard.enqueue("echo", "done", value=1)
    await dashboard.wait_for_status("done", "complete")
    path = f"/saq/api/queues/{dashboard.queue_name}/retry-failed"
    refused = await dashboard.client.post(path, json={"statuses": ["complete"]})
    assert refused.status_code == 400
    assert "include_complete=true" in refused.json()["error"]
    assert (await dashboard.job("done"))["attempts"] == 1
    asked = await dashboard.client.post(path, json={"statuses": ["complete"], "include_complete": True})
    assert asked.status_code == 202
    assert asked.json()["retried"] == ["done"]


async def test_bulk_retry_without_keys_says_how_many_remain(
    dashboard: Dashboard, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(3):
        await dashboard.enqueue("flaky", f"many-{index}")
    for index in range(3):
        await dashboard.wait_for_status(f"many-{index}", "failed")
    monkeypatch.setattr(ops, "BULK_RETRY_LIMIT", 2)
    response = await dashboard.client.post(f"/saq/api/queues/{dashboard.queue_name}/retry-failed", json={})
    assert response.status_code == 202
    body = response.json()
    assert (len(body["retried"]), body["limit"], body["remaining"]) == (2, 2, 1)


async def test_bad_bulk_bodies_get_clear_errors(dashboard: Dashboard) -> None:
    path = f"/saq/api/queues/{dashboard.queue_name}/retry-failed"
    for body, said in [
        ({"statuses": ["nope"]}, "unknown job status 'nope'"),
        ({"statuses": ["queued"]}, "finished jobs only"),
        ({"keys": "victim"}, "keys"),
    ]:
        response = await dashboard.client.post(path, json=body)
        assert response.status_code == 400, (body, response.text)
        assert said in response.json()["error"], response.text


async def test_anonymous_client_is_not_confused_by_the_guard(queue_name: str) -> None:
    """The check needs no session: an app without any login still refuses cross-site writes."""
    app = make_app(queue_name, "memory")
    assert app.plugins.get(SAQPlugin).config.web_trusted_origins == ()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=OWN) as client:
        response = await client.post(
            f"/saq/api/queues/{queue_name}/retry-failed", json={}, headers={"Origin": "http://evil.example"}
        )
    assert response.status_code == 403
