"""The decision table editor in a real browser (issue 20): a process owner opens the D19 eligibility table in dmn-js,
changes a rule's cell, saves the draft, deploys it as a new version, and a new case follows the new rule; a broken
cell is named and marked; axe finds nothing serious on the new pages."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from engine.core.errors import Invalid
from engine.workflow.models import ProcessDefinition
from tests.browser.conftest import LiveServer, axe_violations, login

TABLES = "/studio/processes/pay_progression/tables"
EDIT = f"{TABLES}/d19_eligibility.dmn"
RULE8_MONTHS = 'td[data-row-id="d19_eligibility_rule8"][data-col-id="d19_eligibility_in8"]'


def _open_editor(page: Any) -> None:
    page.goto(EDIT)
    page.wait_for_selector("body[data-dmn-ready=true]")
    page.wait_for_selector(RULE8_MONTHS)


def _edit_cell(page: Any, selector: str, text: str) -> None:
    """Type into a dmn-js cell as a person does: click it, select what it holds, type over it."""
    page.locator(f"{selector} [contenteditable]").first.click()
    editor = page.locator(f"{selector} .cm-content")  # dmn-js opens its FEEL editor (CodeMirror) in the cell
    editor.wait_for()
    editor.press("Control+A")
    editor.press("Delete")
    page.keyboard.type(text)
    page.locator("h1").click()  # leave the cell: dmn-js commits the edit
    assert page.locator(selector).inner_text().strip() == text


def _confirm_deploy(page: Any) -> None:
    """Deploy from the tables page: scenarios change with the draft, so the scenario lab asks for a confirmation and
    a reason (tests/browser/test_scenario_lab_browser.py), and runs in the request."""
    page.get_by_label("I have read the changed scenarios and deploy anyway").check()
    page.get_by_label("Why you deploy anyway").fill("The rule changes.")
    page.get_by_role("button", name="Deploy the edited tables").click(timeout=120_000)
    page.wait_for_selector("text=Deployed: ", timeout=120_000)


def _versions(server: LiveServer) -> list[int]:
    with server.runtime.db.read() as s:
        return list(s.scalars(select(ProcessDefinition.version).where(ProcessDefinition.key == "pay_progression")
                              .order_by(ProcessDefinition.version)))


def _start_refusal(server: LiveServer) -> list[str]:
    """Start a case with a 12-month cycle for a covered demo person with no case running; the refusal's messages
    (the test fails if it starts)."""
    for username in ("engineer", "supervisor", "employee"):  # SPPO1, SPAO2, SPAO1: covered by D19 (cl. 1)
        start = {"employee": username, "agreement_start": "2025-06-30", "assessment_date": "2026-06-30"}
        try:
            server.runtime.start(None, "pay_progression", start, actor="hr")
        except Invalid as exc:
            messages = [p.message for p in exc.problems]
            if not any("already running" in m for m in messages):
                return messages
            continue
        pytest.fail(f"a case started for {username}")
    pytest.fail("every covered demo person has a case")


def test_d19_5_owner_changes_a_rule_in_the_browser_and_deploys_and_a_new_case_follows_it(
        page: Any, live_server: LiveServer) -> None:
    login(page, "owner")
    before = _versions(live_server)
    _open_editor(page)
    assert page.locator(RULE8_MONTHS).inner_text().strip() == '< facts["months_required"]'
    _edit_cell(page, RULE8_MONTHS, "> >5")  # broken: named and marked on save
    page.get_by_role("button", name="Save draft").click()
    problem = page.locator("#dmn-problems li").first
    problem.wait_for()
    assert "rule 8 (d19_eligibility_rule8), input 'Months in this cycle'" in problem.inner_text()
    page.wait_for_selector(f"{RULE8_MONTHS}.dmn-problem")
    _edit_cell(page, RULE8_MONTHS, "< 24")
    page.get_by_role("button", name="Save draft").click()
    page.locator("#dmn-status", has_text="No problems").wait_for()
    assert page.locator("#dmn-problems li").count() == 0
    page.goto(TABLES)
    assert "< 24" in page.locator("main, body").first.inner_text()
    _confirm_deploy(page)
    assert _versions(live_server) == [*before, before[-1] + 1]
    with live_server.runtime.db.read() as s:
        newest = s.scalars(select(ProcessDefinition).where(ProcessDefinition.key == "pay_progression")
                           .order_by(ProcessDefinition.version.desc())).first()
        assert newest is not None and "&lt; 24</text>" in newest.sources["d19_eligibility.dmn"]
    messages = _start_refusal(live_server)  # a 12-month cycle: rule 8 now asks for 24 months
    assert any("cl. 5: the cycle from" in m for m in messages), messages
    assert page.js_errors == []


def test_axe_finds_nothing_serious_on_the_decision_table_pages(axe_page: Any, live_server: LiveServer) -> None:
    page = axe_page
    login(page, "owner")
    found: dict[str, Any] = {}
    page.goto(TABLES)
    found["tables"] = axe_violations(page)
    _open_editor(page)
    found["editor"] = axe_violations(page)
    _edit_cell(page, RULE8_MONTHS, "< 24")
    page.get_by_role("button", name="Save draft").click()
    page.locator("#dmn-status", has_text="saved").wait_for()
    page.goto(TABLES)
    found["tables with a draft"] = axe_violations(page)
    _confirm_deploy(page)
    page.goto(f"{TABLES}/compare")
    found["compare"] = axe_violations(page)
    assert {name: v for name, v in found.items() if v} == {}
