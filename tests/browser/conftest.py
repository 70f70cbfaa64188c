"""Browser fixtures: Debian's headless Chromium driven by Playwright, a live server of its own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import Server, fresh_database, start_server
from writegate.settings import ALL_MODULES

CHROMIUM = os.environ.get("WRITEGATE_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "console test password"


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Every API module plus the test-only gate job kind, on a fresh database."""
    with fresh_database(str(tmp_path_factory.mktemp("browser-db"))) as url:
        srv = start_server(url, modules=[*ALL_MODULES, "tests.browser.consolekit"])
        yield srv
        srv.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A headless Chromium (Debian's package; never a browser Playwright downloads)."""
    if not os.path.exists(CHROMIUM):
        raise RuntimeError(
            f"{CHROMIUM} is missing: `apt-get install -y chromium chromium-driver` (see README)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any, console_server: Server) -> Iterator[Any]:
    """A fresh browser context (no cookies) whose requests may only reach the test server."""
    context = chromium.new_context(
        base_url=console_server.url, viewport={"width": 420, "height": 900}
    )
    outside: list[str] = []

    def only_local(route: Any) -> None:
        url = route.request.url
        if url.startswith(console_server.url) or url.startswith("data:"):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    context.route("**/*", only_local)
    pg = context.new_page()
    pg.on("dialog", lambda dialog: dialog.accept())
    pg.set_default_timeout(20_000)
    yield pg
    context.close()
    assert outside == [], f"the page tried to reach other hosts: {outside}"


def sign_in(page: Any, name: str, password: str = PASSWORD) -> None:
    """Sign in through the form."""
    page.goto("/console/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/console")
