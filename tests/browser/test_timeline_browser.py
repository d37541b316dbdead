"""A case page's timeline in a real browser (Debian's chromium): the picture with a moved assessment date (D19-9d)
passes axe-core (no serious or critical WCAG 2.1 A/AA violation), its list opens, and at 390 px it scales to the
screen rather than scrolling sideways."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from engine.people.models import User
from engine.policies.pay_progression.leave import record_leave
from engine.workflow.models import HumanTask, ProcessInstance
from tests.browser.conftest import LiveServer, axe_violations, login

pytestmark = pytest.mark.browser


def _postponed_case(server: LiveServer) -> int:
    """The demo's pay progression case, its assessment date postponed by ten days of leave without pay."""
    with server.runtime.db.read() as s:
        case = s.scalars(select(HumanTask.instance_id).where(HumanTask.name == "invite_submission",
                                                             HumanTask.state == "open")).first()
        assert case is not None
        row = s.get(ProcessInstance, case)
        assert row is not None
        employee = str(row.data["employee"])
        hr = s.scalars(select(User).where(User.username == "hr")).one()
        _ = hr.person
        s.expunge(hr)
    result = record_leave(server.runtime, hr, employee, {
        "kind": "lwop", "start": "2026-03-10", "end": "2026-03-19", "counts_as_service": False})
    assert result["retimed_cases"] == [case]
    return case


def test_d19_9d_timeline_passes_axe_and_its_list_opens(axe_page: Any, live_server: LiveServer) -> None:
    page = axe_page
    case = _postponed_case(live_server)
    login(page, "hr")
    page.goto(f"/cases/{case}")
    picture = page.get_by_role("img", name="Timeline of the case's dates and timers")
    assert picture.is_visible()
    assert page.locator("svg.timeline-svg .tl-kind-moved-from").count() >= 1
    page.get_by_text("The timeline as a list").click()
    assert page.locator("ol.timeline-list li", has_text="Assessment date (before it moved)").is_visible()
    found = axe_violations(page)
    assert not found, json.dumps(found, indent=1)


def test_d19_9d_timeline_scales_to_a_390_px_screen(page: Any, live_server: LiveServer) -> None:
    case = _postponed_case(live_server)
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, "hr")
    page.goto(f"/cases/{case}")
    box = page.locator("svg.timeline-svg").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
