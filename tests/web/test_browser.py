"""The dashboard in headless Chromium, served by uvicorn, on Redis and PostgreSQL (asyncpg).

Set ``LITESTAR_SAQ_SCREENSHOTS=docs`` to save the screenshots there (they always go to ``tmp_path``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from litestar.config.csrf import CSRFConfig
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.web.apps import TOKEN, cookie_guard, make_app, purge
from tests.web.conftest import Dashboard, serve_in_thread

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# The browser tests are part of the suite, not optional: scripts/test installs Debian's chromium.
assert Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM}: apt-get install chromium (or set CHROMIUM)"

pytestmark = [
    # One browser per module (it takes seconds to start), so the tests share the module's loop.
    pytest.mark.asyncio(loop_scope="module"),
]


@pytest.fixture(params=["redis", "asyncpg"])
def backend(request: pytest.FixtureRequest) -> str:
    """The brokers a deployed dashboard runs on."""
    return str(request.param)


@pytest.fixture
def base_url(backend: str, queue_name: str) -> Iterator[str]:
    """A real server for the test app, with the queue's worker running in it."""
    with serve_in_thread(make_app(queue_name, backend)) as url:
        yield url


@pytest_asyncio.fixture(loop_scope="module")
async def live(base_url: str, backend: str, queue_name: str) -> AsyncIterator[Dashboard]:
    """An HTTP client for the live server, with the job helpers of ``Dashboard``."""
    try:
        async with httpx.AsyncClient(base_url=base_url) as client:
            yield Dashboard(app=None, client=client, queue_name=queue_name)
    finally:
        await purge(backend, queue_name)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    errors: list[Any] = []
    page.on("pageerror", lambda error: errors.append(error))
    # The pages run under a Content-Security-Policy: anything it blocks is a bug of ours.
    page.on(
        "console", lambda message: "Content Security Policy" in message.text and errors.append(message.text)
    )
    try:
        yield page
    finally:
        await context.close()
    assert errors == [], f"JavaScript errors or CSP violations on the page: {errors}"


def save_screenshot(tmp_path: Path, name: str, backend: str) -> Path:
    path = tmp_path / name
    target = os.environ.get("LITESTAR_SAQ_SCREENSHOTS")
    if target and backend == "redis":  # one copy, not one per backend racing under xdist
        shutil.copyfile(path, Path(target) / name)
    return path


async def test_saq_ui_lists_queue_opens_job_and_retries_a_failed_job(
    live: Dashboard, page: Page, base_url: str, tmp_path: Path, backend: str
) -> None:
    queue = live.queue_name
    await live.enqueue("flaky", "cron:flaky", label="flaky")
    await live.enqueue("echo", "later:1", value="x", options={"scheduled": 4_000_000_000})
    await live.wait_for_status("cron:flaky", "failed")

    await page.goto(f"{base_url}/saq")  # no trailing slash: redirected, not SAQ's "404" view
    assert page.url == f"{base_url}/saq/"
    await page.get_by_role("link", name=queue, exact=True).click()
    await expect(page).to_have_url(f"{base_url}/saq/queues/{queue}")
    await expect(page.get_by_role("heading", name="Workers")).to_be_visible()
    await expect(page.get_by_text("later:1")).to_be_visible()
    await expect(page.get_by_text("'value': 'x'")).to_be_visible()  # arguments show, as text
    await page.screenshot(path=tmp_path / "screenshot-dashboard.png", full_page=True)
    save_screenshot(tmp_path, "screenshot-dashboard.png", backend)

    props = {"innerHTML": "<b id='pwned'>injected</b>"}
    await live.enqueue("echo", "later:2", props=props, options={"scheduled": 4_000_000_000})
    await expect(page.get_by_text("<b id='pwned'>injected</b>", exact=False)).to_be_visible()  # refreshed
    assert await page.locator("#pwned").count() == 0

    await page.get_by_text("later:1").click()
    await expect(page).to_have_url(f"{base_url}/saq/queues/{queue}/jobs/later:1")
    await expect(page.get_by_role("heading", name="later:1")).to_be_visible()

    # The failed job, by its URL (SAQ's queue view lists only incomplete jobs).
    await page.goto(f"{base_url}/saq/queues/{queue}/jobs/cron:flaky")
    await expect(page.get_by_text("flaky fails on attempt 1").first).to_be_visible()
    await page.get_by_role("button", name="Retry").click()
    job = await live.wait_for_status("cron:flaky", "complete")
    assert job["attempts"] == 2
    await expect(page.get_by_text("'flaky ok on attempt 2'")).to_be_visible()  # the page refreshes itself

    # SAQ links the job's queue without the mount point; our script sends it to the right page.
    await page.get_by_role("link", name=queue, exact=True).click()
    await expect(page).to_have_url(f"{base_url}/saq/queues/{queue}")


async def test_ops_page_retries_one_then_all_failed_jobs(
    live: Dashboard, page: Page, base_url: str, tmp_path: Path, backend: str
) -> None:
    queue = live.queue_name
    keys = ["report:1", "report:2", "report:3"]
    for key in keys:
        await live.enqueue("flaky", key, label=key)
    for index in range(4):
        await live.enqueue("echo", f"ok:{index}", value=index)
    for key in keys:
        await live.wait_for_status(key, "failed")

    await page.goto(f"{base_url}/saq/")
    await page.get_by_text("Failed jobs, throughput, workers").click()
    await expect(page).to_have_url(f"{base_url}/saq/ops")
    dead_rows = page.locator("#lsaq-dead tbody tr")
    await expect(dead_rows).to_have_count(3)
    await expect(page.locator("#lsaq-workers-table tbody tr")).to_have_count(1)
    await expect(page.locator("#lsaq-chart rect.lsaq-complete")).to_have_count(30)
    await expect(page.locator("#lsaq-throughput")).to_contain_text("complete 4")
    await expect(page.locator("#lsaq-throughput")).to_contain_text("failed 3")
    await page.screenshot(path=tmp_path / "screenshot-ops.png", full_page=True)
    save_screenshot(tmp_path, "screenshot-ops.png", backend)

    await page.locator("#lsaq-dead tr[data-key='report:2'] button").click()
    job = await live.wait_for_status("report:2", "complete")
    assert job["attempts"] == 2
    await expect(dead_rows).to_have_count(2)

    await page.get_by_role("button", name="Retry all 2 shown").click()
    for key in ("report:1", "report:3"):
        job = await live.wait_for_status(key, "complete")
        assert job["attempts"] == 2
    await expect(page.locator("#lsaq-no-dead")).to_be_visible()

    await page.get_by_placeholder("job key").fill("report:3")
    await page.get_by_role("button", name="Find").click()
    found = page.locator("#lsaq-found tbody tr")
    await expect(found).to_have_count(1)
    await expect(found).to_contain_text(queue)
    await expect(found).to_contain_text("complete")


async def test_dashboard_behind_cookie_login_and_csrf(page: Page, queue_name: str) -> None:
    csrf = CSRFConfig(secret="s" * 32, exclude=["/test"])
    app = make_app(queue_name, "memory", web_guards=[cookie_guard], app_options={"csrf_config": csrf})
    with serve_in_thread(app) as base_url:
        async with httpx.AsyncClient(base_url=base_url, cookies={"session": TOKEN}) as client:
            live = Dashboard(app=None, client=client, queue_name=queue_name)
            await live.enqueue("flaky", "csrf:saq-ui")
            await live.enqueue("flaky", "csrf:ops")
            await live.wait_for_status("csrf:saq-ui", "failed")
            await live.wait_for_status("csrf:ops", "failed")
            # A POST without the CSRF header is refused, so the pages must send it.
            refused = await client.post(f"/saq/api/queues/{queue_name}/jobs/csrf:ops/retry")
            assert refused.status_code == 403

            anonymous = await page.goto(f"{base_url}/saq/")
            assert anonymous is not None and anonymous.status == 401
            await page.context.add_cookies([{"name": "session", "value": TOKEN, "url": base_url}])

            await page.goto(f"{base_url}/saq/queues/{queue_name}/jobs/csrf:saq-ui")
            await expect(page.get_by_text("fails on attempt 1").first).to_be_visible()
            await page.get_by_role("button", name="Retry").click()
            assert (await live.wait_for_status("csrf:saq-ui", "complete"))["attempts"] == 2

            await page.goto(f"{base_url}/saq/ops?queue={queue_name}")
            await page.locator("#lsaq-dead tr[data-key='csrf:ops'] button").click()
            assert (await live.wait_for_status("csrf:ops", "complete"))["attempts"] == 2
