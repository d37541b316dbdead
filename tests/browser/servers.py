"""One live server for a whole test module (the conftest's `live_server` makes one per test), and browser tabs
kept per demo person, so a module logs each person in once."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

from engine.core.config import PROJECT_ROOT, Settings
from engine.core.db import Database
from engine.workflow.runtime import Runtime
from tests.browser.conftest import LiveServer, login, new_page


@contextmanager
def serve_copy(demo_database: Path, directory: Path) -> Iterator[LiveServer]:
    """The app on a free loopback port over a copy of the demo database in `directory`."""
    from web import create_app

    path = directory / "browser.sqlite3"
    shutil.copyfile(demo_database, path)
    url = f"sqlite:///{path}"
    # Sessions outlast the tests' clock moves (a placement's tests jump a year), so each person logs in once.
    settings = Settings(database_url=url, forms_dir=PROJECT_ROOT / "forms", processes_dir=PROJECT_ROOT / "processes",
                        session_idle_minutes=5 * 365 * 24 * 60, session_absolute_hours=5 * 365 * 24)
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


class Tabs:
    """A logged-in tab per demo person, made on first use and closed at the end."""

    def __init__(self, browser: Any, server: LiveServer, viewport: dict[str, int] | None = None,
                 bypass_csp: bool = False) -> None:
        self.browser, self.server, self.viewport, self.bypass_csp = browser, server, viewport, bypass_csp
        self.tabs: dict[str, Any] = {}

    def __call__(self, username: str) -> Any:
        if username not in self.tabs:
            tab = new_page(self.browser, self.server, bypass_csp=self.bypass_csp)
            if self.viewport:
                tab.set_viewport_size(self.viewport)
            login(tab, username)
            self.tabs[username] = tab
        tab = self.tabs[username]
        tab.js_errors.clear()
        return tab

    def open(self, username: str, path: str) -> Any:
        """`username`'s tab on `path`, logging in again when the session has ended (the tests move the clock)."""
        tab = self(username)
        tab.goto(path)
        if "/login" in tab.url and not path.startswith("/login"):
            login(tab, username)
            tab.goto(path)
        return tab

    def close(self) -> None:
        for tab in self.tabs.values():
            tab.context.close()
