"""Browser tests: the real app on a loopback port over a fresh SQLite database with the demo loaded,
driven by Debian's chromium through Playwright (no browser download).

Skipped, with the reason, when chromium or the npm assets are missing on a developer's machine; under
CI=true they fail instead, because CI must run them.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from engine.core.config import PROJECT_ROOT, Settings
from engine.core.db import Database
from engine.workflow.demo import load_demo
from engine.workflow.runtime import Runtime
from tests.conftest import T0, require

CHROMIUM = Path("/usr/bin/chromium")
NODE_MODULES = PROJECT_ROOT / "node_modules"
VENDOR = PROJECT_ROOT / "web" / "static" / "vendor"
AXE = NODE_MODULES / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PASSWORD = "demo-pass-2026"  # the documented demo password


def _check_environment() -> None:
    require(CHROMIUM.exists(), f"{CHROMIUM} is not installed (apt-get install chromium)")
    require(AXE.is_file(), "node_modules is missing (run `make vendor`: npm ci from package-lock.json)")
    require((VENDOR / "studio.js").is_file() and (VENDOR / "viewer.js").is_file(),
            "web/static/vendor is not built (run `make vendor`)")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless chromium for the whole session."""
    _check_environment()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class LiveServer:
    """The app served by werkzeug in a thread; `runtime` reaches the same database."""

    def __init__(self, url: str, runtime: Runtime) -> None:
        self.url = url
        self.runtime = runtime


@pytest.fixture(scope="session")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database with the demo (people, processes, two cases), built once and copied per test."""
    _check_environment()
    from engine.core.clock import CLOCK
    from web.cli import upgrade_database

    path = tmp_path_factory.mktemp("demo") / "demo.sqlite3"
    url = f"sqlite:///{path}"
    upgrade_database(url)
    settings = Settings(database_url=url, forms_dir=PROJECT_ROOT / "forms", processes_dir=PROJECT_ROOT / "processes")
    runtime = Runtime(Database(url), settings)
    CLOCK.freeze(T0)  # the demo's dates as every test sees them (the autouse clock fixture is per test)
    try:
        for _line in load_demo(runtime):
            pass
    finally:
        CLOCK.reset()
        runtime.db.dispose()  # the last connection checkpoints the WAL into the file
    return path


@contextmanager
def serve_copy(demo_database: Path, directory: Path, long_sessions: bool = False) -> Iterator[LiveServer]:
    """The app on a free loopback port over a copy of the demo database in `directory`. `long_sessions`: sessions
    outlast the tests' clock moves (a placement's tests jump a year), so each person logs in once."""
    from web import create_app

    path = directory / "browser.sqlite3"
    shutil.copyfile(demo_database, path)
    url = f"sqlite:///{path}"
    settings = Settings(database_url=url, forms_dir=PROJECT_ROOT / "forms", processes_dir=PROJECT_ROOT / "processes")
    if long_sessions:
        settings = replace(settings, session_idle_minutes=5 * 365 * 24 * 60, session_absolute_hours=5 * 365 * 24)
    runtime = Runtime(Database(url), settings)
    os.environ.setdefault("NTPSWF_SECRET_KEY", "test-secret")
    app = create_app(settings, {"TESTING": False})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{server.server_port}", runtime)
    finally:
        server.shutdown()
        thread.join(timeout=5)
        app.extensions["ntpswf"].db.dispose()
        runtime.db.dispose()


@pytest.fixture
def live_server(demo_database: Path, tmp_path: Path) -> Iterator[LiveServer]:
    """A fresh copy of the demo database and the app on a free loopback port."""
    with serve_copy(demo_database, tmp_path) as server:
        yield server


def new_page(browser: Any, server: LiveServer, bypass_csp: bool = False) -> Any:
    """A fresh browser context (no cookies) with short timeouts, so a broken page fails fast.

    `bypass_csp` only for injecting axe-core: the app's Content-Security-Policy forbids inline scripts,
    and every other test runs under it, which proves the pages need none.
    """
    context = browser.new_context(base_url=server.url, viewport={"width": 1400, "height": 1000},
                                  bypass_csp=bypass_csp)
    context.set_default_timeout(8000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.js_errors = errors
    return tab


@pytest.fixture
def page(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """A page under the app's real Content-Security-Policy."""
    tab = new_page(browser, live_server)
    yield tab
    tab.context.close()


@pytest.fixture
def axe_page(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """A page where axe-core can be injected with add_script_tag."""
    tab = new_page(browser, live_server, bypass_csp=True)
    yield tab
    tab.context.close()


def login(page: Any, username: str) -> None:
    """Log in through the login form."""
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login" not in url)


def axe_violations(page: Any, exclude: list[str] | None = None) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations on the current page (axe from node_modules, WCAG 2.1 A/AA)."""
    page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate(
        """async (exclude) => {
            const context = exclude.length ? { exclude: exclude.map((s) => [s]) } : document;
            const tags = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
            return await axe.run(context, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] });
        }""",
        exclude or [],
    )
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"] if v["impact"] in ("serious", "critical")
    ]
