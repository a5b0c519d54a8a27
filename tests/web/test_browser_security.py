"""The dashboard's defences in headless Chromium: no script through job data, no cross-site writes from a
page of the same site on another port, and the pages keep working under their Content-Security-Policy."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from litestar import Litestar, MediaType, get
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect

from tests.web.apps import TOKEN, cookie_guard, make_app, purge
from tests.web.conftest import Dashboard, serve_in_thread
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture(params=["redis", "asyncpg"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


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
    """A page that fails the test on a JavaScript error or on any Content-Security-Policy violation."""
    context = await browser.new_context()
    page = await context.new_page()
    errors: list[Any] = []
    page.on("pageerror", lambda error: errors.append(error))

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            errors.append(message.text)

    page.on("console", on_console)
    try:
        yield page
    finally:
        await context.close()
    assert errors == [], f"errors or CSP violations on the page: {errors}"


async def assert_no_injection(page: Page) -> None:
    assert await page.locator("#pwned").count() == 0  # the markup never became an element...
    assert await page.title() != "pwned"  # ...and no script ran
    assert await page.evaluate("document.querySelectorAll('#app img').length") == 0


async def test_job_data_never_runs_script_in_saq_ui(page: Page, backend: str, queue_name: str) -> None:
    with serve_in_thread(make_app(queue_name, backend)) as base_url:
        key = f"hostile-{queue_name}"  # SAQ's PostgreSQL table keys jobs by key alone, across queues
        try:
            async with httpx.AsyncClient(base_url=base_url) as client:
                planted = await client.post("/test/plant", json={"queue": queue_name, "key": key})
                assert planted.status_code == 201, planted.text

            await page.goto(f"{base_url}/saq/queues/{queue_name}")
            await expect(page.get_by_text(key, exact=True)).to_be_visible()
            # function and kwargs cells show the payload as text
            await expect(page.get_by_text("<img src=x id=pwned", exact=False).first).to_be_visible()
            await assert_no_injection(page)

            await page.goto(f"{base_url}/saq/queues/{queue_name}/jobs/{key}")
            await expect(page.get_by_role("heading", name=key)).to_be_visible()
            await expect(page.locator("details p").first).to_contain_text("innerHTML")  # result, as text
            await expect(page.locator("details p").last).to_contain_text("innerHTML")  # error, as text
            await assert_no_injection(page)

            await page.goto(f"{base_url}/saq/ops")
            await page.get_by_placeholder("job key").fill(key)
            await page.get_by_role("button", name="Find").click()
            await expect(page.locator("#lsaq-found tbody tr")).to_have_count(1)
            await assert_no_injection(page)
        finally:
            await purge(backend, queue_name)


def attacker_app(target: str, queue_name: str) -> Litestar:
    """A page on the same host, another port: it posts a form and a no-cors fetch at the dashboard."""
    api = f"{target}/saq/api/queues/{queue_name}"
    html = f"""<!doctype html><html><body>
<form id="forged" method="post" action="{api}/jobs/victim/retry" enctype="text/plain">
<input name='{{"x":"' value='"}}'></form>
<script>
fetch("{api}/jobs/victim/abort", {{method: "POST", mode: "no-cors", credentials: "include", body: "{{}}"}})
  .finally(() => fetch("{api}/retry-failed", {{method: "POST", mode: "no-cors", credentials: "include",
    body: JSON.stringify({{statuses: ["complete"], include_complete: true}})}}))
  .finally(() => document.getElementById("forged").submit());
</script></body></html>"""

    @get("/", media_type=MediaType.HTML)
    async def evil() -> str:
        return html

    return Litestar([evil])


@pytest.fixture
def same_site_servers(queue_name: str) -> Iterator[tuple[str, str]]:
    app = make_app(queue_name, "memory", web_guards=[cookie_guard])
    with serve_in_thread(app) as base_url, serve_in_thread(attacker_app(base_url, queue_name)) as evil_url:
        yield base_url, evil_url


@pytest.mark.parametrize("backend", ["memory"])
async def test_a_same_site_page_cannot_retry_or_abort(
    page: Page, same_site_servers: tuple[str, str], queue_name: str, backend: str
) -> None:
    base_url, evil_url = same_site_servers
    async with httpx.AsyncClient(base_url=base_url, cookies={"session": TOKEN}) as client:
        live = Dashboard(app=None, client=client, queue_name=queue_name)
        await live.enqueue("flaky", "victim")
        await live.wait_for_status("victim", "failed")
        await live.enqueue("echo", "finished", value=1)
        await live.wait_for_status("finished", "complete")

        # The victim is logged in: the browser holds the dashboard's (SameSite=Lax) session cookie.
        await page.context.add_cookies([{"name": "session", "value": TOKEN, "url": base_url}])
        seen: dict[str, int] = {}
        page.on(
            "response", lambda response: seen.__setitem__(response.url.rsplit("/", 1)[-1], response.status)
        )
        async with page.expect_response(lambda response: response.url.endswith("/retry")) as forged:
            await page.goto(evil_url)
        assert (await forged.value).status == 403
        # The browser did send the session cookie: without the check the forged retry would have run.
        forged_headers = await (await forged.value).request.all_headers()
        assert f"session={TOKEN}" in forged_headers.get("cookie", ""), forged_headers
        assert seen.get("abort") == 403 and seen.get("retry-failed") == 403, seen
        await expect(page.get_by_text("cross-site request refused")).to_be_visible()

        # Refused before anything happened: the failed job was not retried, the finished one not re-run.
        victim, finished = await live.job("victim"), await live.job("finished")
        assert (victim["status"], victim["attempts"]) == ("failed", 1)
        assert (finished["status"], finished["attempts"]) == ("complete", 1)

        # The dashboard's own pages, same browser, same cookie: the retry goes through.
        await page.goto(f"{base_url}/saq/queues/{queue_name}/jobs/victim")
        await page.get_by_role("button", name="Retry").click()
        assert (await live.wait_for_status("victim", "complete"))["attempts"] == 2
