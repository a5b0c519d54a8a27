"""Security headers on pages, API, errors and assets; API 404/405 answers with an ``error``; HEAD works."""

from __future__ import annotations

import re

import pytest

from litestar_saq.web.security import CONTENT_SECURITY_POLICY
from tests.web.conftest import Dashboard


@pytest.fixture
def backend() -> str:
    """Nothing here depends on the broker."""
    return "memory"


def page_paths(queue: str) -> list[str]:
    return ["/saq/", f"/saq/queues/{queue}", f"/saq/queues/{queue}/jobs/cron:x", "/saq/ops"]


async def test_pages_send_csp_frame_and_sniffing_headers(dashboard: Dashboard) -> None:
    for path in page_paths(dashboard.queue_name):
        response = await dashboard.client.get(path)
        assert response.status_code == 200, path
        csp = response.headers["content-security-policy"]
        assert csp == CONTENT_SECURITY_POLICY
        assert "script-src 'self';" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "frame-ancestors 'self'" in csp
        assert response.headers["x-frame-options"] == "SAMEORIGIN"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
        # No inline script: every <script> has a src, and no element has an on* handler attribute.
        scripts = re.findall(r"<script\b[^>]*>", response.text)
        assert scripts and all(" src=" in tag for tag in scripts), scripts
        assert not re.search(r"\son[a-z]+\s*=", response.text)


async def test_api_errors_and_assets_send_nosniff(dashboard: Dashboard) -> None:
    name = dashboard.queue_name
    for path in [
        "/saq/api/queues",
        f"/saq/api/queues/{name}",
        "/saq/api/queues/no-such-queue",
        "/saq/static/app.js",
        "/saq/static/pico.min.css",
        "/saq/static/litestar-saq/root-path.js",
        "/saq/static/no-such-file.js",
        "/saq/api/queues/q/jobs/a/b",
        "/saq/health",
    ]:
        response = await dashboard.client.get(path)
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["referrer-policy"] == "same-origin", path


async def test_api_routing_errors_carry_an_error_key(dashboard: Dashboard) -> None:
    name = dashboard.queue_name
    for method, path, status, said in [
        ("GET", f"/saq/api/queues/{name}/jobs/report/2024", 404, "/api/jobs?key="),
        ("GET", "/saq/api/nothing-here", 404, "no dashboard API route GET /saq/api/nothing-here"),
        ("POST", "/saq/api/queues", 405, "POST is not allowed"),
        ("GET", f"/saq/api/queues/{name}/jobs/x/retry", 405, "GET is not allowed"),
        ("DELETE", f"/saq/api/queues/{name}", 405, "DELETE is not allowed"),
    ]:
        response = await dashboard.client.request(method, path)
        assert response.status_code == status, (method, path, response.text)
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert said in body["error"], body
        assert body["status_code"] == status
    assert "POST" in (await dashboard.client.get(f"/saq/api/queues/{name}/jobs/x/retry")).headers["allow"]


async def test_head_works_wherever_get_does(dashboard: Dashboard) -> None:
    name = dashboard.queue_name
    await dashboard.enqueue("echo", "head-job", value=1)
    await dashboard.wait_for_status("head-job", "complete")
    for path in [
        *page_paths(name),
        "/saq/api/queues",
        f"/saq/api/queues/{name}",
        f"/saq/api/queues/{name}/jobs/head-job",
        f"/saq/api/queues/{name}/jobs",
        f"/saq/api/queues/{name}/throughput",
        "/saq/api/jobs?key=head-job",
        "/saq/api/workers",
        "/saq/health",
        "/saq/static/app.js",
        "/saq/api/queues/no-such-queue",
        "/saq/api/queues/q/jobs/a/b",
    ]:
        got = await dashboard.client.get(path)
        head = await dashboard.client.head(path)
        assert head.status_code == got.status_code, path
        assert head.content == b"", path
        assert head.headers["content-type"] == got.headers["content-type"], path


async def test_other_routes_of_the_app_keep_their_404s(dashboard: Dashboard) -> None:
    response = await dashboard.client.get("/api/nothing")
    assert response.status_code == 404
    assert "error" not in response.json()
    assert (await dashboard.client.post("/test/job")).status_code == 405
