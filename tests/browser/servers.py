"""Browser tabs kept per demo person, so a module serving one live server for all its tests (conftest.serve_copy
with long sessions) logs each person in once."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import LiveServer, login, new_page


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
