"""The main pages at 390 px wide (a phone) in the real chromium: none scrolls sideways (issue 19: the menu was cut
off, the case page scrolled sideways and a rejected 5,000-character name made the page 134,000 px wide), and a
long unbroken name or text wraps inside the page; a table keeps its words whole and scrolls inside itself; and
axe-core finds nothing serious at that width either.

One server for the module over a copy of the demo database (its two pay progression cycles and two placements).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine.people.users import PersonInput, save_person
from engine.workflow.models import HumanTask, ProcessInstance
from tests.browser.conftest import LiveServer, axe_violations, new_page, serve_copy
from tests.browser.servers import Tabs
from tests.policies.secondment.test_secondment_flow import APPLICATION
from tests.workflow.driver import Driver

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
LONG_WORD = "Pneumonoultramicroscopicsilicovolcanoconiosis" * 40  # 1,800 characters, no space to break at
LONG_NAME = "Wolfeschlegelsteinhausenbergerdorff" * 4  # 140 characters, one word


@pytest.fixture(scope="module")
def server(demo_database: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve_copy(demo_database, tmp_path_factory.mktemp("narrow"), long_sessions=True) as live:
        yield live


@pytest.fixture(scope="module")
def phone(browser: Any, server: LiveServer) -> Iterator[Tabs]:
    tabs = Tabs(browser, server, viewport=PHONE, bypass_csp=True)  # only to inject axe-core
    yield tabs
    tabs.close()


def _overflow(page: Any) -> dict[str, Any]:
    """The page's width against the window's, and the first elements that stick out on the right."""
    result: dict[str, Any] = page.evaluate("""() => {
        const width = window.innerWidth;
        const wide = [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > width + 1)
            .slice(0, 5).map((e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
                (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ').join('.') : ''));
        return {scroll: document.documentElement.scrollWidth, width, wide};
    }""")
    return result


def _crushed(page: Any) -> list[str]:
    """Table cells narrower than a short word in them: the word is split letter by letter ("Us/er/na/me"); a
    line may still break after a hyphen or a slash ("SPAO1-" / "1")."""
    found: list[str] = page.evaluate("""() => {
        const ctx = document.createElement('canvas').getContext('2d');
        const out = [];
        for (const cell of document.querySelectorAll('main th, main td')) {
            if (!cell.getClientRects().length) continue;
            const style = getComputedStyle(cell);
            const room = cell.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
            const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                const parent = node.parentElement;
                const box = parent.getBoundingClientRect();  // hidden text (off-screen, 1 px) and a <pre>,
                if (box.right <= 0 || box.width <= 1 || parent.closest('pre')) continue;  // which scrolls, are fine
                const font = getComputedStyle(parent);
                ctx.font = `${font.fontWeight} ${font.fontSize} ${font.fontFamily}`;
                const words = node.textContent.split(/\\s+|(?<=[-\\/])/).filter((w) => w.length > 1 && w.length <= 20);
                const split = words.filter((w) => ctx.measureText(w).width > room + 1);
                if (split.length) out.push(`${split[0]} in ${Math.round(room)} px`);
            }
        }
        return out.slice(0, 5);
    }""")
    return found


def _assert_fits(page: Any, what: str) -> None:
    found = _overflow(page)
    assert found["scroll"] <= found["width"], f"{what} scrolls sideways at 390 px: {found}"
    assert _crushed(page) == [], f"{what}: words in table cells are split letter by letter"
    assert page.js_errors == [], what


def _assert_wraps(page: Any, text: str, what: str) -> None:
    """The element showing `text` stays inside the window and is several lines high: the word is broken, not cut."""
    shown = page.locator("main").get_by_text(text[:80]).filter(visible=True).first
    box = shown.bounding_box()
    assert box is not None, f"{what}: the text is not shown"
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], f"{what}: the text sticks out: {box}"
    assert box["height"] >= 3 * 16, f"{what}: the text does not wrap: {box}"


def _open_task(server: LiveServer, name: str) -> HumanTask:
    with server.runtime.db.read() as s:
        task = s.scalars(select(HumanTask).where(HumanTask.name == name, HumanTask.state == "open")
                         .order_by(HumanTask.id)).first()
        assert task is not None, f"no open {name} task"
        s.expunge(task)
        return task


def test_login_page_fits_a_phone(browser: Any, server: LiveServer) -> None:
    page = new_page(browser, server)
    try:
        page.set_viewport_size(PHONE)
        page.goto("/login")
        _assert_fits(page, "/login")
    finally:
        page.context.close()


@pytest.mark.parametrize(("username", "path"), [
    ("employee", "/"),
    ("employee", "/cases/"),
    ("employee", "/register/mine"),
    ("supervisor", "/"),
    ("admin", "/people/"),
    ("admin", "/people/employee"),
    ("admin", "/register/"),
    ("admin", "/register/report"),
    ("admin", "/studio/"),
    ("admin", "/studio/processes/secondment"),
    ("admin", "/hr/"),
    ("admin", "/hr/people/import"),
    ("admin", "/hr/annual"),
    ("admin", "/d19/settings"),
    ("admin", "/notifications"),
    ("admin", "/cases/new"),
    ("admin", "/people/new"),
    ("admin", "/d19/pay-points"),
    ("admin", "/register/opportunities"),
    ("admin", "/register/settings"),
    ("admin", "/admin/groups"),
    ("admin", "/admin/incidents"),
    ("admin", "/studio/processes/pay_progression"),
])
def test_main_pages_fit_a_phone(phone: Tabs, username: str, path: str) -> None:
    page = phone.open(username, path)
    _assert_fits(page, path)
    assert axe_violations(page) == [], f"{path} at 390 px"  # a table that scrolls must still be reachable
    menu = page.get_by_role("navigation", name="Main")
    box = menu.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], "the menu is cut off"


@pytest.mark.parametrize(("task", "username"), [("invite_submission", "supervisor"), ("apply", "engineer"),
                                                ("select_secondee", "supervisor")])
def test_task_and_case_pages_fit_a_phone(phone: Tabs, server: LiveServer, task: str, username: str) -> None:
    row = _open_task(server, task)
    page = phone(username)
    page.goto(f"/tasks/{row.id}")
    _assert_fits(page, f"the {task} task page")
    with page.expect_navigation():  # nothing filled in: the page comes back with the error summary
        page.locator("main form").get_by_role("button", name="Submit").click()
    assert page.locator(".error-summary").is_visible()
    _assert_fits(page, f"the {task} task page with its errors")
    page.goto(f"/cases/{row.instance_id}")
    _assert_fits(page, f"the case page of {task}")
    page.goto(f"/studio/instances/{row.instance_id}/diagram")
    _assert_fits(page, f"the diagram of the case of {task}")


def test_long_unbroken_text_wraps_on_a_phone(phone: Tabs, server: LiveServer) -> None:
    """A long word in a case's data and in a person's name wraps; a rejected 5,000-character name does too."""
    driver = Driver(server.runtime)
    with server.runtime.db.unit_of_work() as uow:
        save_person(uow.session, PersonInput(username="longname", name=LONG_NAME, email="long@demo.ntps.example",
                                             classification="SPAO1", pay_point="SPAO1-1", organisation="DPC",
                                             supervisor="supervisor", commenced_on="2024-01-15"))
        uow.commit()
    case = driver.start("secondment", {"route": "application", "employee": "employee",
                                       "home_contact": "supervisor"}, as_user="employee")
    driver.complete(case, "apply", "employee", {"application": {**APPLICATION["application"],
                                                               "aspirations": LONG_WORD, "preferred_host": LONG_NAME}})
    with server.runtime.db.read() as s:
        assert s.get_one(ProcessInstance, case).data["application"]["aspirations"] == LONG_WORD
    task = _open_task(server, "consider_application")
    page = phone("supervisor")
    for path in (f"/cases/{case}", f"/tasks/{task.id}", "/register/mine"):
        page.goto(path)
        _assert_fits(page, f"{path} with a {len(LONG_WORD)}-character word")
    page.goto(f"/cases/{case}")
    _assert_wraps(page, LONG_WORD, "the case page")
    admin = phone("admin")
    for path in ("/people/", "/people/longname", "/register/"):
        admin.goto(path)
        _assert_fits(admin, f"{path} with a {len(LONG_NAME)}-character name")
    admin.goto("/people/longname")
    form = admin.locator("main form", has=admin.locator('[name="name"]'))
    form.locator('[name="name"]').fill("X" * 5000)
    with admin.expect_navigation():
        form.locator("button[type=submit]").first.click()
    _assert_wraps(admin, "X" * 5000, "the refused name")
    _assert_fits(admin, "the people form refusing a 5,000-character name")
