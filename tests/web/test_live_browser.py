"""The live dashboard in headless Chromium: pages update from their event stream, without reload or polling.

Uses the browser, page and server fixtures of ``test_browser.py`` (Redis and PostgreSQL).
"""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest
from playwright.async_api import Page, Request, expect

from tests.support.poll import wait_until
from tests.web import test_browser
from tests.web.conftest import Dashboard
from tests.web.tasks import STEP_GATES

pytestmark = [pytest.mark.asyncio(loop_scope="module")]

# The browser, its pages and the live server of test_browser.py (Redis and PostgreSQL).
backend = test_browser.backend
base_url = test_browser.base_url
live = test_browser.live
browser = test_browser.browser
page = test_browser.page


def count_navigations(page: Page) -> list[str]:
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: frame == page.main_frame and navigations.append(frame.url))
    return navigations


def api_requests(page: Page) -> list[str]:
    requests: list[str] = []

    def record(request: Request) -> None:
        if "/saq/api/" in request.url:
            requests.append(request.url)

    page.on("request", record)
    return requests


async def test_job_page_shows_progress_move_without_reload(
    live: Dashboard, page: Page, base_url: str
) -> None:
    key = f"{live.queue_name}/steps #1"  # a key no path could carry
    await live.enqueue("stepper", key, steps=3, options={"timeout": 60})
    navigations = count_navigations(page)
    requests = api_requests(page)
    await page.goto(f"{base_url}/saq/job?queue={quote(live.queue_name)}&key={quote(key)}")
    main = page.locator("#lsaq-job")
    await expect(main).to_have_attribute("data-status", "active")
    await expect(page.locator("#lsaq-job-key")).to_contain_text(key)
    delays = []
    try:
        for step in (1, 2, 3):
            started = time.monotonic()
            STEP_GATES[key] = step
            await expect(page.locator("dd[data-field=meta]")).to_have_text(repr({"step": step}))
            delays.append(time.monotonic() - started)
            await expect(page.locator("#lsaq-job-progress-text")).to_have_text(f"{round(step * 100 / 3)} %")
            value = await page.locator("#lsaq-job-progress").evaluate("bar => bar.value")
            assert value == pytest.approx(step / 3)
    finally:
        STEP_GATES.pop(key, None)
    await expect(main).to_have_attribute("data-status", "complete")
    await expect(page.locator("dd[data-field=result]")).to_have_text(repr("3 steps"))
    print(f"progress update -> shown in the browser: {[round(delay, 2) for delay in delays]} s")
    assert len(navigations) == 1, navigations  # the page was never reloaded
    assert all("/api/jobs/events" in url for url in requests), requests  # no polling beside the stream
    assert await page.evaluate("document.body.dataset.lsaqLive") == "open"


async def test_ops_page_counts_follow_enqueues_over_the_stream(
    live: Dashboard, page: Page, base_url: str
) -> None:
    queue = live.queue_name
    navigations = count_navigations(page)
    requests = api_requests(page)
    await page.goto(f"{base_url}/saq/ops?queue={quote(queue)}")
    row = page.locator(f"#lsaq-queues tr[data-queue='{queue}']")
    scheduled = row.locator("td[data-field=scheduled]")
    await expect(scheduled).to_have_text("0")
    for index in range(1, 4):
        await live.enqueue("echo", f"{queue}-later-{index}", options={"scheduled": 4_000_000_000})
        await expect(scheduled).to_have_text(str(index))
    await live.enqueue("flaky", f"{queue}-fails", label="live")
    await expect(page.locator(f"#lsaq-dead tr[data-key='{queue}-fails']")).to_be_visible(timeout=15_000)
    await wait_until(lambda: page.evaluate("document.body.dataset.lsaqLive"), what="the stream state")
    assert await page.evaluate("document.body.dataset.lsaqLive") == "open"
    assert len(navigations) == 1, navigations
    assert requests and all("/api/events" in url for url in requests), requests
    assert len(requests) == 1, f"one stream, reconnects or polling seen: {requests}"


async def test_saq_job_view_links_to_the_live_job_view(live: Dashboard, page: Page, base_url: str) -> None:
    key = f"{live.queue_name}-later"
    await live.enqueue("echo", key, value="x", options={"scheduled": 4_000_000_000})
    await page.goto(f"{base_url}/saq/queues/{live.queue_name}")
    await expect(page.locator("[data-lsaq=live-job-link]")).to_have_count(0)
    await page.get_by_text(key).click()  # SAQ's own navigation (pushState), no page load
    await page.locator("[data-lsaq=live-job-link]").click()
    await expect(page).to_have_url(f"{base_url}/saq/job?queue={quote(live.queue_name)}&key={quote(key)}")
    await expect(page.locator("dd[data-field=kwargs]")).to_have_text("{'value': 'x'}")
