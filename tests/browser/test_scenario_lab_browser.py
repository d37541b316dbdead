"""The scenario lab in a real browser (issue 20, Done when): a process owner changes a rule in the D19 eligibility
table in the browser, tries the draft, sees the scenarios whose outcome changed, is refused a deployment without the
confirmation, deploys it with one, and a new case follows the new rule; axe finds nothing serious on the lab's
pages."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from engine.core.models import AuditEvent
from engine.workflow.scenario_lab import CONFIRM_LABEL
from tests.browser.conftest import LiveServer, axe_violations, login
from tests.browser.test_dmn_browser import RULE8_MONTHS, TABLES, _edit_cell, _open_editor, _start_refusal, _versions

APPROVED = "An approved progression takes effect from the annual assessment date"  # a 12-month cycle
#: The lab runs the process's scenarios twice in its request (a few seconds each side): waits allow for it.
LAB_WAIT = 120_000


def _draft_24_months(page: Any) -> None:
    _open_editor(page)
    _edit_cell(page, RULE8_MONTHS, "< 24")
    page.get_by_role("button", name="Save draft").click()
    page.locator("#dmn-status", has_text="No problems").wait_for()


def _try(page: Any) -> None:
    page.goto(TABLES)
    page.get_by_role("button", name="Try this draft").click(timeout=LAB_WAIT)
    page.wait_for_selector("#lab-results", timeout=LAB_WAIT)


def test_d19_5_owner_tries_a_changed_rule_sees_the_changed_scenarios_deploys_and_a_new_case_follows_it(
        axe_page: Any, live_server: LiveServer) -> None:
    page = axe_page
    login(page, "owner")
    before = _versions(live_server)
    _draft_24_months(page)
    _try(page)
    changed = page.locator("#lab-changed li", has_text=APPROVED)
    assert changed.count() == 1 and "start (pay_progression)" in changed.inner_text()
    row = page.locator("#lab-results tbody tr.lab-changed", has=page.get_by_role("rowheader", name=APPROVED))
    assert row.count() == 1
    cells = row.locator("td")
    assert "progressed" in cells.nth(1).inner_text() and "fails" in cells.nth(2).inner_text()
    assert cells.nth(3).inner_text().startswith("Changed")
    assert page.get_by_role("table", name="Each scenario with what runs").count() == 1
    found = {"lab": axe_violations(page)}
    page.get_by_role("button", name="Deploy the edited tables").click(timeout=LAB_WAIT)  # no confirmation
    page.locator("#deploy-errors").wait_for(timeout=LAB_WAIT)
    assert "confirm" in page.locator("#deploy-errors").inner_text()
    assert _versions(live_server) == before
    found["refused"] = axe_violations(page)
    page.get_by_label(CONFIRM_LABEL).check()
    page.get_by_label("Why you deploy anyway").fill("Cl. 5 is to ask 24 months from the next cycle.")
    page.get_by_role("button", name="Deploy the edited tables").click(timeout=LAB_WAIT)
    page.wait_for_selector("text=Deployed: ", timeout=LAB_WAIT)
    assert _versions(live_server) == [*before, before[-1] + 1]
    with live_server.runtime.db.read() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.kind == "deployed_despite_scenarios")).one()
    assert event.actor == "owner" and APPROVED in event.detail["changed"]
    messages = _start_refusal(live_server)  # a new case with a 12-month cycle: the new rule refuses it
    assert any("cl. 5: the cycle from" in m for m in messages), messages
    assert {name: v for name, v in found.items() if v} == {}
    assert page.js_errors == []
