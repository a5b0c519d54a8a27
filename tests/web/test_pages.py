"""Pages, static assets, guards, the OpenAPI schema and the public-dashboard warning (memory queues)."""

from __future__ import annotations

import gzip
import logging
from collections.abc import Callable
from typing import Any

import pytest
from litestar import Litestar

from litestar_saq import SAQPlugin
from tests.web.apps import TOKEN, make_app, token_guard
from tests.web.conftest import Dashboard


@pytest.fixture
def backend() -> str:
    """Nothing here depends on the broker."""
    return "memory"


async def test_saq_without_slash_redirects_to_the_page(dashboard: Dashboard) -> None:
    response = await dashboard.client.get("/saq?tab=1")
    assert response.status_code in (301, 302, 307, 308)
    assert response.headers["location"] == "saq/?tab=1"
    followed = await dashboard.client.get("/saq", follow_redirects=True)
    assert followed.status_code == 200
    assert str(followed.url) == "http://testserver/saq/"


async def test_page_and_client_routes_render_saq_ui(dashboard: Dashboard) -> None:
    for path in ["/saq/", f"/saq/queues/{dashboard.queue_name}", "/saq/queues/q/jobs/cron:cleanup"]:
        response = await dashboard.client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html")
        page = response.text
        for asset in ("/saq/static/pico.min.css", "/saq/static/snabbdom.js", "/saq/static/app.js"):
            assert f'"{asset}"' in page
        assert 'data-root="/saq"' in page
        assert "//" not in page.replace("http://", "").replace("https://", "")
        assert 'href="/saq/ops"' in page
    ops = await dashboard.client.get("/saq/ops")
    assert ops.status_code == 200
    assert '"/saq/static/litestar-saq/ops.js"' in ops.text


@pytest.mark.parametrize(
    ("web_path", "home", "root"),
    [("/saq/", "/saq/", "/saq"), ("/", "/", ""), ("/admin/jobs", "/admin/jobs/", "/admin/jobs")],
)
async def test_web_path_never_doubles_a_slash(
    dashboard_factory: Callable[..., Any], web_path: str, home: str, root: str
) -> None:
    dashboard = await dashboard_factory(web_path=web_path)
    response = await dashboard.client.get(home)
    assert response.status_code == 200
    assert f'data-root="{root}"' in response.text
    assert f'"{root}/static/app.js"' in response.text
    api = await dashboard.client.get(f"{root}/api/queues")
    assert api.status_code == 200


async def test_gz_only_assets_are_served_gzip_encoded_or_decompressed(dashboard: Dashboard) -> None:
    for name, media_type, opening in [
        ("pico.min.css", "text/css", b"/*!"),
        ("snabbdom.js", "text/javascript", b""),
    ]:
        encoded = await dashboard.client.get(f"/saq/static/{name}", headers={"accept-encoding": "gzip"})
        assert encoded.status_code == 200
        assert encoded.headers["content-type"].startswith(media_type)
        assert encoded.headers["content-encoding"] == "gzip"
        assert "accept-encoding" in encoded.headers["vary"].lower()
        assert encoded.content.startswith(opening)  # httpx undid the gzip, so it was valid gzip

        for refusal in ("identity", "gzip;q=0, identity", "br"):
            plain = await dashboard.client.get(f"/saq/static/{name}", headers={"accept-encoding": refusal})
            assert plain.status_code == 200
            assert "content-encoding" not in plain.headers
            assert plain.headers["content-type"].startswith(media_type)
            assert plain.content == encoded.content
            assert plain.headers["etag"] != encoded.headers["etag"]

        cached = await dashboard.client.get(
            f"/saq/static/{name}",
            headers={"accept-encoding": "gzip", "if-none-match": encoded.headers["etag"]},
        )
        assert cached.status_code == 304


async def test_raw_bytes_of_a_gz_asset_are_gzip(dashboard: Dashboard) -> None:
    async with dashboard.client.stream(
        "GET", "/saq/static/pico.min.css", headers={"accept-encoding": "gzip"}
    ) as response:
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    assert gzip.decompress(raw).startswith(b"/*!")


async def test_plain_assets_and_missing_ones(dashboard: Dashboard) -> None:
    for path, media_type in [
        ("/saq/static/app.js", "text/javascript"),
        ("/saq/static/litestar-saq/ops.js", "text/javascript"),
        ("/saq/static/litestar-saq/dashboard.js", "text/javascript"),
        ("/saq/static/litestar-saq/dashboard.css", "text/css"),
    ]:
        response = await dashboard.client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith(media_type)
        assert "content-encoding" not in response.headers
    missing = await dashboard.client.get("/saq/static/nope.js")
    assert missing.status_code == 404
    escape = await dashboard.client.get("/saq/static/../../etc/passwd")
    assert escape.status_code == 404


GUARDED_REQUESTS = (
    ("GET", "/saq/"),
    ("GET", "/saq/queues/{queue}"),
    ("GET", "/saq/queues/{queue}/jobs/cron:x"),
    ("GET", "/saq/ops"),
    ("GET", "/saq/health"),
    ("GET", "/saq/api/queues"),
    ("GET", "/saq/api/queues/{queue}"),
    ("GET", "/saq/api/queues/{queue}/jobs/x"),
    ("POST", "/saq/api/queues/{queue}/jobs/x/retry"),
    ("POST", "/saq/api/queues/{queue}/jobs/x/abort"),
    ("GET", "/saq/api/queues/{queue}/jobs"),
    ("POST", "/saq/api/queues/{queue}/retry-failed"),
    ("GET", "/saq/api/queues/{queue}/throughput"),
    ("GET", "/saq/api/jobs?key=x"),
    ("GET", "/saq/api/workers"),
)


async def test_guards_protect_every_page_and_api_route(dashboard_factory: Callable[..., Any]) -> None:
    dashboard = await dashboard_factory(web_guards=[token_guard])
    for method, template in GUARDED_REQUESTS:
        path = template.format(queue=dashboard.queue_name)
        body = {} if method == "POST" else None
        anonymous = await dashboard.client.request(method, path, json=body)
        assert anonymous.status_code == 401, path
        assert anonymous.json()["error"] == "send an X-Token header"
        wrong = await dashboard.client.request(method, path, json=body, headers={"x-token": "guess"})
        assert wrong.status_code == 403, path
        allowed = await dashboard.client.request(method, path, json=body, headers={"x-token": TOKEN})
        assert allowed.status_code not in (401, 403), path
    assert (await dashboard.client.get("/saq", headers={"x-token": TOKEN})).status_code == 307
    page = await dashboard.client.get("/saq/", headers={"x-token": TOKEN})
    assert page.status_code == 200
    # Assets stay public, e.g. for a login page styled like the dashboard.
    assert (await dashboard.client.get("/saq/static/app.js")).status_code == 200
    assert (await dashboard.client.get("/saq/static/pico.min.css")).status_code == 200


def _public_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if "is public" in record.getMessage()]


@pytest.mark.parametrize("guards", [None, []])
async def test_no_guards_means_public_with_one_warning(
    dashboard_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture, guards: Any
) -> None:
    caplog.set_level(logging.WARNING, logger="litestar_saq")
    dashboard = await dashboard_factory(web_guards=guards)
    assert (await dashboard.client.get("/saq/")).status_code == 200
    assert (await dashboard.client.get("/saq/api/queues")).status_code == 200
    (warning,) = _public_warnings(caplog)
    assert warning.levelno == logging.WARNING
    assert "/saq/" in warning.getMessage()
    assert "web_guards" in warning.getMessage()


def test_guarded_dashboard_logs_no_warning(queue_name: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="litestar_saq")
    make_app(queue_name, "memory", web_guards=[token_guard])
    assert _public_warnings(caplog) == []


def _schema_paths(app: Litestar) -> list[str]:
    return [path for path in app.openapi_schema.paths or {} if path.startswith("/saq")]


def test_dashboard_is_left_out_of_the_openapi_schema_by_default(queue_name: str) -> None:
    assert _schema_paths(make_app(queue_name, "memory")) == []


def test_dashboard_is_in_the_openapi_schema_when_asked(queue_name: str) -> None:
    paths = _schema_paths(make_app(queue_name, "memory", web_include_in_schema=True))
    assert "/saq/api/queues" in paths
    assert "/saq/api/queues/{queue_name}/jobs/{job_key}/retry" in paths


async def test_a_broken_broker_gives_json_errors_and_a_failing_health(
    dashboard: Dashboard, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert dashboard.app is not None
    queue = dashboard.app.plugins.get(SAQPlugin).task_queues.get(dashboard.queue_name)

    async def broken_info(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("broker at 10.0.0.1 is down")

    monkeypatch.setattr(queue, "info", broken_info)
    health = await dashboard.client.get("/saq/health")
    assert health.status_code == 503
    assert dashboard.queue_name in health.text and "10.0.0.1" not in health.text

    listing = await dashboard.client.get("/saq/api/queues")
    assert listing.status_code == 500
    # SAQ's UI shows "error"; the details (hosts…) stay in the server log.
    assert listing.json() == {"error": "internal error (ConnectionError); see the server log"}
    assert any("10.0.0.1" in str(record.exc_info) for record in caplog.records if record.exc_info)
