"""Shared fixtures. Tests use DATABASE_URL / REDIS_URL where set; with REQUIRE_SERVICES=1 a
test whose service is missing fails instead of skipping (CI sets it)."""

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import pytest

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def service_missing(reason: str) -> None:
    """Skip the test on a developer's machine; fail it where services are required."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing: {reason}", pytrace=False)
    pytest.skip(reason)


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 2
        ):
            return True
    except OSError:
        return False


@pytest.fixture
def redis_url() -> str:
    """The Redis of REDIS_URL, answering."""
    url = os.environ.get("REDIS_URL", "")
    if not url:
        service_missing("REDIS_URL is not set")
    if not _reachable(url, 6379):
        service_missing(f"Redis at {urlparse(url).hostname} does not answer")
    return url


@pytest.fixture
def postgres_required(settings) -> None:
    """For tests that only mean something on PostgreSQL (row locks, concurrency)."""
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        service_missing("DATABASE_URL does not point at PostgreSQL")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Real hashing costs ~0.3 s per user; tests make many users and check no hash strength."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _celery_in_process():
    """Tasks queued by the code under test run in-process, never on the developer's broker;
    the tests that exercise a real worker switch this off themselves."""
    from oncall import celery_app

    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


CHROMIUM = "/usr/bin/chromium"
# What a headless Chromium needs here: no sandbox as root, and no calls home (the network is
# closed, and background requests would only fail).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser_page(monkeypatch):
    """`browser_page(viewport={...}, locale=...)` → a Playwright page in Debian's Chromium.

    Skips (fails under REQUIRE_SERVICES=1) when /usr/bin/chromium is missing; no browser is ever
    downloaded. The browser is closed after the test.
    """
    # Playwright's sync API runs an event loop in this thread, so Django would refuse the ORM
    # calls the test makes; they are safe here. Set for this test only, not at import time:
    # subprocesses started by other tests (`manage.py check --deploy`) would inherit it.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not os.access(CHROMIUM, os.X_OK):
        service_missing(f"chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    from django.db import connections
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )

        def new_page(*, viewport: dict, locale: str | None = None):
            context = browser.new_context(viewport=viewport, locale=locale)
            page = context.new_page()
            page.set_default_timeout(15_000)
            return page

        try:
            yield new_page
        finally:
            browser.close()
            # ORM calls made while Playwright's loop is around open their own connection
            # (another context); close it, or the test database can't be dropped afterwards.
            connections.close_all()


SCREENSHOT_MAX_BYTES = 300 * 1024


@pytest.fixture
def screenshot():
    """`screenshot(page, "incident")` saves `incident.png` in SCREENSHOTS_DIR (`make screenshots`
    sets it to docs/img) and does nothing otherwise, so the tests that take the README's
    pictures run in the ordinary suite too. `full_page` takes the whole page, `max_height` cuts
    a long one (in CSS pixels). A picture over 300 KB fails the test: the README would carry it
    in every clone."""

    def save(
        page, name: str, *, full_page: bool = True, max_height: int | None = None
    ) -> Path | None:
        folder = os.environ.get("SCREENSHOTS_DIR", "")
        if not folder:
            return None
        path = Path(folder) / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        options = {"path": str(path), "full_page": full_page, "animations": "disabled"}
        if max_height is not None:
            width, height = page.evaluate(
                "[document.documentElement.clientWidth, document.documentElement.scrollHeight]"
            )
            options["clip"] = {"x": 0, "y": 0, "width": width, "height": min(height, max_height)}
        page.screenshot(**options)
        size = path.stat().st_size
        assert size <= SCREENSHOT_MAX_BYTES, f"{path} is {size // 1024} KB (at most 300 KB)"
        return path

    return save
