"""PNG screenshots of the main pages, for the README's walk-through (issue 19).

    .venv/bin/python scripts/screenshots.py [FOLDER]      (default build/screenshots/, which git ignores)

Starts the app the way the browser tests do: a fresh SQLite database in a temporary folder, migrated, the demo
loaded (demo mode: the login page lists the demo logins), served on a free loopback port in a thread; then Debian's
chromium (/usr/bin/chromium, through Playwright: no browser is downloaded) logs in as the demo people and saves
each page, at desktop width and a few at 390 px (a phone). Nothing is sent anywhere.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from engine.core.config import PROJECT_ROOT, Settings  # noqa: E402
from engine.core.db import Database  # noqa: E402
from engine.workflow.demo import DEMO_PASSWORD, load_demo  # noqa: E402
from engine.workflow.models import HumanTask  # noqa: E402
from engine.workflow.runtime import Runtime  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

#: (file name, who, path or "task:<element id>" / "case:<element id>", at phone width too)
PAGES = [
    ("01-login", None, "/login", True),
    ("02-inbox-supervisor", "supervisor", "/", True),
    ("03-task-invite-submission", "supervisor", "task:invite_submission", True),
    ("04-case-pay-progression", "supervisor", "case:invite_submission", True),
    ("05-cases", "supervisor", "/cases/", False),
    ("06-task-apply", "engineer", "task:apply", False),
    ("07-placements-mine", "engineer", "/register/mine", False),
    ("08-opportunities", "employee", "/register/opportunities", False),
    ("09-people", "admin", "/people/", True),
    ("10-person", "admin", "/people/employee", False),
    ("11-register", "ocpe", "/register/", True),
    ("12-register-report", "ocpe", "/register/report", False),
    ("13-studio", "owner", "/studio/", False),
    ("14-studio-process", "owner", "/studio/processes/secondment", False),
    ("15-hr", "admin", "/hr/", False),
    ("16-hr-people-import", "admin", "/hr/people/import", False),
    ("17-hr-annual-cycles", "admin", "/hr/annual", False),
    ("18-pay-progression-settings", "admin", "/d19/settings", False),
]


@contextmanager
def demo_server(folder: Path) -> Iterator[tuple[str, Runtime]]:
    """The app with the demo loaded over a fresh SQLite database in `folder`, on a free loopback port."""
    from web import create_app
    from web.cli import upgrade_database

    url = f"sqlite:///{folder / 'screenshots.sqlite3'}"
    upgrade_database(url)
    settings = Settings(database_url=url, forms_dir=PROJECT_ROOT / "forms", processes_dir=PROJECT_ROOT / "processes",
                        demo_mode=True)
    runtime = Runtime(Database(url), settings)
    for line in load_demo(runtime):
        print(f"demo: {line}")
    os.environ.setdefault("NTPSWF_SECRET_KEY", "screenshots-only")
    app = create_app(settings, {"TESTING": False})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", runtime
    finally:
        server.shutdown()
        thread.join(timeout=5)
        app.extensions["ntpswf"].db.dispose()
        runtime.db.dispose()


def _resolve(runtime: Runtime, path: str) -> str:
    """A path, or the page of the first open task of an element ("task:x") or of its case ("case:x")."""
    kind, _, element = path.partition(":")
    if kind not in ("task", "case"):
        return path
    with runtime.db.read() as s:
        task = s.scalars(select(HumanTask).where(HumanTask.name == element, HumanTask.state == "open")
                         .order_by(HumanTask.id)).first()
    if task is None:
        raise SystemExit(f"the demo has no open {element} task")
    return f"/tasks/{task.id}" if kind == "task" else f"/cases/{task.instance_id}"


def _tab(browser: Any, base_url: str, username: str | None) -> Any:
    context = browser.new_context(base_url=base_url, viewport=DESKTOP)
    context.set_default_timeout(15000)
    page = context.new_page()
    if username:
        page.goto("/login")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(lambda url: "/login" not in url)
    return page


def take(folder: Path) -> list[Path]:
    """Save every page of PAGES in `folder`; returns the files written."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is not installed (apt-get install chromium)")
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp, demo_server(Path(tmp)) as (base_url, runtime), \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        tabs: dict[str | None, Any] = {}
        for name, username, path, phone in PAGES:
            page = tabs.get(username) or tabs.setdefault(username, _tab(browser, base_url, username))
            page.set_viewport_size(DESKTOP)
            page.goto(_resolve(runtime, path))
            written.append(folder / f"{name}.png")
            page.screenshot(path=str(written[-1]), full_page=True)
            if phone:
                page.set_viewport_size(PHONE)
                written.append(folder / f"{name}-390px.png")
                page.screenshot(path=str(written[-1]), full_page=True)
        browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default=str(ROOT / "build" / "screenshots"),
                        help="where to write the PNG files (default: build/screenshots/)")
    folder = Path(parser.parse_args(argv).folder)
    for path in take(folder):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
