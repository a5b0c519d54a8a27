"""``SAQConfig(web_login_url=...)``: a browser that is not logged in is sent to the login page (with
``next=``) from the dashboard's HTML pages; API routes and a logged-in user's 403 keep JSON errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from litestar_saq import SAQConfig
from litestar_saq.exceptions import SAQConfigError
from tests.web.apps import TOKEN, token_guard

BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture
def backend() -> str:
    return "memory"


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("/saq/", "/login?next=/saq"),  # /saq redirects to /saq/
        ("/saq/ops", "/login?next=/saq/ops"),
        ("/saq/queues/{queue}/jobs/k?x=1", "/login?next=/saq/queues/{queue}/jobs/k%3Fx%3D1"),
    ],
)
async def test_browser_without_login_is_sent_to_the_login_page(
    dashboard_factory: Callable[..., Any], page: str, expected: str
) -> None:
    dashboard = await dashboard_factory(web_guards=[token_guard], web_login_url="/login")
    response = await dashboard.client.get(page.format(queue=dashboard.queue_name), headers=BROWSER)
    assert response.status_code in (302, 303, 307)
    assert response.headers["location"] == expected.format(queue=dashboard.queue_name)
    logged_in = await dashboard.client.get(
        page.format(queue=dashboard.queue_name), headers={**BROWSER, "x-token": TOKEN}
    )
    assert logged_in.status_code == 200


async def test_api_routes_and_refusals_keep_json_errors(dashboard_factory: Callable[..., Any]) -> None:
    dashboard = await dashboard_factory(web_guards=[token_guard], web_login_url="/login")
    api = await dashboard.client.get("/saq/api/queues", headers=BROWSER)
    assert api.status_code == 401 and api.json()["error"] == "send an X-Token header"
    not_a_browser = await dashboard.client.get("/saq/ops", headers={"accept": "application/json"})
    assert not_a_browser.status_code == 401
    forbidden = await dashboard.client.get("/saq/ops", headers={**BROWSER, "x-token": "guess"})
    assert forbidden.status_code == 403, "a logged-in user without the right is not sent to log in again"


def test_login_url_must_be_a_path_or_url() -> None:
    with pytest.raises(SAQConfigError, match=r"web_login_url='login' must be a path"):
        SAQConfig(web_login_url="login")
