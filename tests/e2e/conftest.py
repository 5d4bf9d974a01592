"""A live dashboard (`manage.py serve` in its own process and database) and one headless
Chromium for the whole session, driven through Python Playwright.

A real server process rather than pytest-django's live_server: the in-memory SQLite test
database cannot be shared with a server thread, and a separate process is what people run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import database_urls, free_port, manage, process_env, spawn

CHROMIUM = Path("/usr/lib/chromium/chromium")
INSTALL = (
    "install with .ci/install-browser.sh (Debian's chromium) and "
    "pip install -r requirements-dev.txt (playwright)"
)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--no-first-run",
]
PASSWORD = "a long passphrase for the browser"
PEOPLE = {"mona": "moderator", "ada": "admin", "victor": "viewer"}


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: CI must run the browser tests; {INSTALL}")
    pytest.skip(f"{reason}; {INSTALL}")


@dataclass
class LiveDashboard:
    url: str
    env: dict[str, str]

    def shell(self, code: str) -> str:
        """Run Python in a `manage.py shell` on the live server's database."""
        done = manage(self.env, "shell", "-c", code)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


@pytest.fixture(scope="session")
def live_dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDashboard]:
    tmp = tmp_path_factory.mktemp("e2e")
    urls = database_urls(tmp)
    # Figures computed on every view: a test that decides a job then reads the overview must
    # not meet figures another test's visit kept (the tests run in any order).
    env = process_env(tmp, DATABASE_URL=next(urls), OVERVIEW_CACHE_S="0")
    env.pop("IPFS_API_URL", None)
    env.pop("CACHE_URL", None)
    try:
        migrated = manage(env, "migrate", "-v0")
        assert migrated.returncode == 0, migrated.stderr
        for username, role in PEOPLE.items():
            made = manage(
                dict(env, MODERATOR_PASSWORD=PASSWORD), "create_moderator", username, "--role", role
            )
            assert made.returncode == 0, made.stderr
        live = LiveDashboard(url="", env=env)
        live.shell("from tests.e2e.page_data import seed_e2e; seed_e2e()")
        port = free_port()
        server = spawn(env, "serve", "--port", str(port), "--no-scanner", "--no-executor")
        live.url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if server.poll() is not None:
                    raise AssertionError(f"serve exited: {server.communicate()[1][-3000:]}")
                try:
                    if httpx.get(f"{live.url}/login/", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "serve did not answer within 60 s"
                time.sleep(0.1)
            yield live
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.communicate()
    finally:
        urls.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Python Playwright is not installed")
    if not CHROMIUM.exists():
        _missing(f"Chromium is not installed at {CHROMIUM}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    folder = Path(os.environ.get("TEST_OUTPUT_DIR") or "test-output") / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def sign_in(browser: Any, live_dashboard: LiveDashboard) -> Iterator[Any]:
    """sign_in("mona") → a page signed in as mona, in a context of its own."""
    contexts: list[Any] = []

    def open_as(username: str) -> Any:
        context = browser.new_context(base_url=live_dashboard.url)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.goto("/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_dashboard.url}/")
        return page

    yield open_as
    for context in contexts:
        context.close()
