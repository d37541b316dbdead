"""A case page's timeline: a server-rendered SVG picture (role="img", with a title, a description and a list of the
same marks as its text alternative), with moved dates and what is overdue; every label escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from itertools import pairwise
from pathlib import Path

from flask.testing import FlaskClient

from engine.core.clock import CLOCK
from engine.policies.pay_progression.leave import record_leave
from engine.workflow.runtime import Runtime
from engine.workflow.timeline import Mark, Timeline
from tests.conftest import Auth
from tests.workflow.driver import Driver, deploy_file
from web import timeline_svg

START = {"employee": "employee", "agreement_start": "2025-06-30", "assessment_date": "2026-06-30"}
SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("tl")</script> & <img src=x onerror=alert(1)>'
HOSTILE_BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="hostile_defs"
    targetNamespace="http://ntps.example/tests">
  <bpmn:process id="hostile_timeline" name="Hostile timeline" isExecutable="true">
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="work" name="{name}">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="dueAt" value="work_due" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:boundaryEvent id="late" name="{name}" attachedToRef="work">
      <bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDate>timer_at(add_days(work_due, 28))</bpmn:timeDate>
      </bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:endEvent id="e1"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="e2"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="work" />
    <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="e1" />
    <bpmn:sequenceFlow id="f3" sourceRef="late" targetRef="e2" />
  </bpmn:process>
</bpmn:definitions>
"""


def _svg(page: str) -> ET.Element:
    """The page's timeline picture, parsed as XML (it must be well-formed)."""
    found = re.search(r'<svg class="timeline-svg".*?</svg>', page, re.S)
    assert found is not None, "no timeline picture on the page"
    return ET.fromstring(found.group(0))


def test_d19_9d_case_page_shows_the_timeline_picture_with_the_moved_date_and_its_list(
        client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    d = Driver(app_org)
    case = app_org.start(None, "pay_progression", START, actor="hr")
    record_leave(app_org, d.user("hr"), "employee", {
        "kind": "lwop", "start": "2026-03-10", "end": "2026-03-19", "counts_as_service": False})
    auth.login("hr")
    response = client.get(f"/cases/{case}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    svg = _svg(page)
    assert svg.get("role") == "img" and svg.get("width") == "100%" and svg.get("viewBox", "").startswith("0 0 ")
    assert svg.get("aria-labelledby") == f"timeline-{case}-title timeline-{case}-desc"
    title, desc = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
    assert title is not None and title.get("id") == f"timeline-{case}-title"
    assert desc is not None and "Assessment date (before it moved) moved from 2026-06-30 to 2026-07-10" in (
        desc.text or "")
    assert svg.find(f".//{SVG}path[@class='tl-arrow']") is not None  # the arrow from the old date to the new
    assert 'href="/static/timeline.css"' in page
    # The text alternative: the same marks, in order, as a list.
    listed = re.search(r'<ol class="timeline-list">(.*?)</ol>', page, re.S)
    assert listed is not None
    items = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", li)).strip()
             for li in re.findall(r"<li>(.*?)</li>", listed.group(1), re.S)]
    assert len(items) == len(svg.findall(f".//{SVG}g[@class]"))
    assert any(i.startswith("2026-06-30 — Assessment date (before it moved) (moved from, to come): moved to "
                            "2026-07-10") for i in items), items
    assert any(i.startswith("2026-07-10 — Assessment date (date, to come) moved") for i in items), items


def test_overdue_is_said_in_words_and_shape_and_hostile_labels_are_escaped(
        client: FlaskClient, app_org: Runtime, auth: Auth, tmp_path: Path) -> None:
    path = tmp_path / "hostile_timeline.bpmn"
    name = HOSTILE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    path.write_text(HOSTILE_BPMN.replace("{name}", name))
    deploy_file(app_org, path)
    case = Driver(app_org).start("hostile_timeline", {"employee": "employee", "work_due": "2026-03-05"})
    CLOCK.freeze(datetime(2026, 3, 9, tzinfo=UTC))
    auth.login("hr")
    page = client.get(f"/cases/{case}").get_data(as_text=True)
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(" in page
    svg = _svg(page)
    overdue = svg.findall(f".//{SVG}g[@class='tl-mark tl-kind-due tl-state-overdue']")
    assert len(overdue) == 1
    shape = overdue[0].find(f"{SVG}polygon[@class='tl-overdue']")
    assert shape is not None  # a triangle, not a colour alone
    label = overdue[0].find(f"{SVG}text[@class='tl-label']")
    assert label is not None and (label.text or "").startswith('Overdue: <script>alert("tl")')
    timer = svg.find(f".//{SVG}g[@class='tl-mark tl-kind-timer tl-state-future']/{SVG}title")
    assert timer is not None and (timer.text or "").startswith(HOSTILE)
    assert "1 overdue" in page and '<span class="overdue">overdue</span>' in page


def _timeline(marks: list[Mark]) -> Timeline:
    now = datetime(2026, 3, 2, tzinfo=UTC)
    return Timeline(marks, date(2026, 3, 2), now, "Australia/Darwin")


def test_labels_of_close_dates_are_staggered_into_rows_that_do_not_overlap() -> None:
    marks = [Mark(f"A long label for step number {n}", date(2026, 3, 2 + n), "milestone", state="future")
             for n in range(8)]
    svg = ET.fromstring(str(timeline_svg.render(_timeline(marks))))
    spans: dict[str, list[tuple[float, float]]] = {}
    for text in svg.iter(f"{SVG}text"):
        if text.get("class") != "tl-label":
            continue
        x, width = float(text.get("x", "0")), len(text.text or "") * timeline_svg.CHAR
        left = x - width if text.get("text-anchor") == "end" else x
        spans.setdefault(text.get("y", ""), []).append((left, left + width))
    assert len(spans) > 1  # more than one row
    for row in spans.values():
        row.sort()
        assert all(a[1] <= b[0] for a, b in pairwise(row)), row
    # Every mark keeps its whole label in the picture's <title>, row or no row.
    titles = [t.text or "" for g in svg.iter(f"{SVG}g") for t in g.findall(f"{SVG}title")]
    assert all(any(t.startswith(m.label) for t in titles) for m in marks)


def test_month_ticks_are_local_months_and_an_empty_timeline_still_draws() -> None:
    marks = [Mark("Start", date(2026, 1, 10), "milestone", state="past"),
             Mark("End", date(2026, 6, 20), "milestone", state="future")]
    svg = ET.fromstring(str(timeline_svg.render(_timeline(marks))))
    months = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "tl-month"]
    assert months == ["Feb 2026", "Mar", "Apr", "May", "Jun"]
    empty = ET.fromstring(str(timeline_svg.render(_timeline([]))))
    desc = empty.find(f"{SVG}desc")
    assert desc is not None and desc.text == "No dates yet. Today is 2026-03-02."
