"""The studio and the staff pages in a real browser (Debian's chromium): modeling and deploying, completing a
task through the web form, validation marks on the diagram, instance diagrams, MIWG files opening in
bpmn-js, and axe-core on every page (no serious or critical WCAG 2.1 A/AA violation)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from lxml import etree
from playwright.sync_api import expect
from sqlalchemy import select

from engine.core.config import PROJECT_ROOT
from engine.core.models import AuditEvent
from engine.workflow.models import HumanTask, ProcessDefinition
from engine.workflow.validation import SPIFF_NS
from tests.browser.conftest import LiveServer, axe_violations, login
from tests.conftest import SHARED

pytestmark = pytest.mark.browser

MIWG = SHARED / "conformance" / "miwg"


def _open_modeler(page: Any, key: str = "pay_progression") -> None:
    page.goto(f"/studio/processes/{key}/edit")
    page.wait_for_selector("body[data-modeler-ready=true]")
    assert page.js_errors == []


def _select(page: Any, element_id: str) -> None:
    page.evaluate("""(id) => {
        const modeler = window.ntpsStudio.modeler;
        modeler.get('selection').select(modeler.get('elementRegistry').get(id));
    }""", element_id)


def _open_task(server: LiveServer, name: str) -> HumanTask:
    with server.runtime.db.read() as s:
        task = s.scalars(select(HumanTask).where(HumanTask.name == name, HumanTask.state == "open")
                         .order_by(HumanTask.id)).first()
        assert task is not None
        return task


def test_owner_renames_a_task_in_the_modeler_and_deploys_version_2(page: Any, live_server: LiveServer) -> None:
    login(page, "owner")
    _open_modeler(page)
    _select(page, "invite_submission")
    name = page.get_by_label("Name", exact=True)
    name.fill("Invite the employee to submit")
    expect(page.locator("#studio-dirty")).to_contain_text("Unsaved")
    page.get_by_role("button", name="Deploy as a new version").click()
    expect(page.locator("#studio-status")).to_have_text(re.compile("^Deployed"))
    assert "pay_progression version 2" in page.inner_text("#studio-status")

    page.goto("/studio/processes/pay_progression")
    assert page.get_by_role("rowheader", name="2 (newest)").is_visible()
    with live_server.runtime.db.read() as s:
        v2 = s.scalars(select(ProcessDefinition).where(ProcessDefinition.key == "pay_progression",
                                                       ProcessDefinition.version == 2)).one()
        assert 'name="Invite the employee to submit"' in v2.sources["pay_progression.bpmn"]
        assert "spiffworkflow:instructionsForEndUser" in v2.sources["pay_progression.bpmn"]  # extensions kept
        event = s.scalars(select(AuditEvent).where(AuditEvent.kind == "deployed",
                                                   AuditEvent.actor == "owner")).one()
        assert event.instance_id is None and event.detail["version"] == 2
    page.goto("/studio/processes/pay_progression/compare?old=1&new=2")
    assert "Invite the employee to submit" in page.inner_text("main")


def test_validation_marks_problems_and_the_form_editor_previews(page: Any, live_server: LiveServer) -> None:
    login(page, "owner")
    _open_modeler(page)
    # A refused script and a refused gateway condition: both must be listed and drawn.
    page.evaluate("""() => {
        const modeler = window.ntpsStudio.modeler;
        const registry = modeler.get('elementRegistry');
        const modeling = modeler.get('modeling');
        const script = registry.filter((e) => e.type === 'bpmn:ScriptTask')[0];
        modeling.updateProperties(script, { script: "__import__('os').system('id')" });
        const flow = registry.filter((e) => e.businessObject && e.businessObject.conditionExpression)[0];
        const expression = modeler.get('bpmnFactory').create('bpmn:FormalExpression', { body: "open('/etc/passwd')" });
        modeling.updateProperties(flow, { conditionExpression: expression });
        window.broken = [script.id, flow.id];
    }""")
    page.get_by_role("button", name="Validate").click()
    expect(page.locator("#studio-status")).to_have_text(re.compile("^Not valid"))
    script_id, flow_id = page.evaluate("window.broken")
    problems = page.inner_text("#problems")
    assert f"{script_id}: script: name '__import__' is not allowed" in problems
    assert f"{flow_id}: condition: name 'open' is not allowed" in problems
    assert page.locator(f'.djs-element.studio-problem[data-element-id="{script_id}"]').count() == 1
    assert page.locator(f'.djs-element.studio-problem[data-element-id="{flow_id}"]').count() == 1
    page.locator("#problems").get_by_role("button", name=script_id).first.click()
    selected = page.evaluate("window.ntpsStudio.modeler.get('selection').get().map((e) => e.id)")
    assert selected == [script_id]
    page.get_by_role("button", name="Deploy as a new version").click()
    expect(page.locator("#studio-status")).to_have_text(re.compile("^Not deployed"))
    with live_server.runtime.db.read() as s:
        assert s.scalars(select(ProcessDefinition.version).where(
            ProcessDefinition.key == "pay_progression")).all() == [1]
    _edit_a_form_with_live_preview(page)


def _edit_a_form_with_live_preview(page: Any) -> None:
    """The form editor's preview is rendered by the staff renderer, and a broken schema says why."""
    page.select_option("#form-file", "invite_submission.json")
    page.wait_for_selector("#form-preview label")
    schema = json.loads(page.input_value("#form-schema"))
    schema["properties"]["invitation"]["properties"]["extra_note"] = {"type": "string", "title": "A brand new field"}
    page.fill("#form-schema", json.dumps(schema))
    page.wait_for_selector("#form-preview label:has-text('A brand new field')")
    page.fill("#form-schema", '{"type": "object", "properties": {"x": {"type": "nonsense"}}}')
    expect(page.locator("#form-problems")).to_contain_text("nonsense")


def test_staff_completes_a_task_through_the_web_form(page: Any, live_server: LiveServer) -> None:
    task = _open_task(live_server, "invite_submission")
    login(page, "supervisor")
    page.goto(f"/tasks/{task.id}")
    page.get_by_label("Message to the employee", exact=False).fill("Please make your submission by 30 May.")
    page.get_by_role("button", name="Submit").click()
    page.wait_for_url(f"**/cases/{task.instance_id}")
    assert "The case has moved on" in page.inner_text("main")
    with live_server.runtime.db.read() as s:
        done = s.get(HumanTask, task.id)
        assert done is not None and done.state == "completed" and done.completed_by == "supervisor"


def test_instance_diagram_marks_open_and_completed_elements(page: Any, live_server: LiveServer) -> None:
    task = _open_task(live_server, "invite_submission")
    login(page, "hr")
    page.goto(f"/studio/instances/{task.instance_id}/diagram")
    page.wait_for_selector("[data-instance-diagram][data-ready=true]")
    assert page.locator('.djs-element.ntps-open[data-element-id="invite_submission"]').count() == 1
    assert page.locator(".djs-element.ntps-completed").count() >= 1
    assert "Open (waiting for a person)" in page.inner_text("[data-diagram-text]")
    # Someone who may not see the case gets nothing.
    response = page.request.get(f"/studio/instances/{task.instance_id}/diagram.json")
    assert response.status == 200
    login(page, "clerk")
    assert page.request.get(f"/studio/instances/{task.instance_id}/diagram.json").status == 404


def test_other_tools_files_open_and_spiff_extensions_round_trip(page: Any, live_server: LiveServer) -> None:
    files = sorted(MIWG.glob("*/*.bpmn"))
    if not files:
        pytest.skip(f"{MIWG} is absent (shared conformance files not checked out)")
    login(page, "owner")
    _open_modeler(page)
    results = page.evaluate("""async (documents) => {
        const modeler = window.ntpsStudio.modeler;
        const out = {};
        for (const [name, xml] of documents) {
            try {
                const { warnings } = await modeler.importXML(xml);
                const elements = modeler.get('elementRegistry').getAll().length;
                out[name] = { ok: true, elements, warnings: warnings.length };
            } catch (error) {
                out[name] = { ok: false, error: String(error) };
            }
        }
        return out;
    }""", [[f"{f.parent.name}/{f.name}", f.read_text(encoding="utf-8")] for f in files])
    failed = {name: r for name, r in results.items() if not r["ok"] or r["elements"] < 2}
    assert failed == {}
    assert len(results) == len(files)
    _round_trip_spiff_extensions(page)


def _spiff_elements(xml: str) -> list[tuple[str, str, str]]:
    """Every spiffworkflow element and attribute of a document: (tag, attributes, text), in document order."""
    root = etree.fromstring(xml.encode())
    out = [(etree.QName(n).localname, json.dumps(dict(sorted(n.attrib.items()))), (n.text or "").strip())
           for n in root.iter(f"{{{SPIFF_NS}}}*")]
    out += [(etree.QName(n).localname, k, v) for n in root.iter() if isinstance(n.tag, str)
            for k, v in n.attrib.items() if k.startswith(f"{{{SPIFF_NS}}}")]
    return out


def _round_trip_spiff_extensions(page: Any) -> None:
    """Diagrams with spiffworkflow extensions come out of the modeler with every extension unchanged."""
    diagram = PROJECT_ROOT / "processes" / "pay_progression" / "pay_progression.bpmn"
    documents = {"pay_progression.bpmn": diagram.read_text()}
    documents.update({f"{p.parent.name}/{p.name}": p.read_text(encoding="utf-8")
                      for p in sorted((SHARED / "conformance" / "spiffarena").glob("*/*.bpmn"))})
    saved = page.evaluate("""async (documents) => {
        const modeler = window.ntpsStudio.modeler;
        const out = {};
        for (const [name, xml] of documents) {
            await window.ntpsStudio.importXML(xml);  // laid out automatically when the file has no layout
            out[name] = (await modeler.saveXML({ format: true })).xml;
        }
        return out;
    }""", list(documents.items()))
    for name, xml in documents.items():
        assert _spiff_elements(saved[name]) == _spiff_elements(xml), name
    assert sum(len(_spiff_elements(x)) for x in documents.values()) > 50


def test_axe_finds_no_serious_violations(axe_page: Any, live_server: LiveServer) -> None:
    page = axe_page
    task = _open_task(live_server, "invite_submission")
    found: dict[str, Any] = {}
    page.goto("/login")
    found["login"] = axe_violations(page)
    login(page, "supervisor")
    page.goto("/")
    found["inbox"] = axe_violations(page)
    page.goto(f"/tasks/{task.id}")
    found["task form"] = axe_violations(page)
    page.get_by_role("button", name="Submit").click()  # empty: errors tied to their fields
    found["task form with errors"] = axe_violations(page)
    page.goto(f"/cases/{task.instance_id}")
    found["case"] = axe_violations(page)
    page.goto(f"/studio/instances/{task.instance_id}/diagram")
    page.wait_for_selector("[data-instance-diagram][data-ready=true]")
    found["instance diagram"] = axe_violations(page)
    login(page, "owner")
    page.goto("/studio/")
    found["studio"] = axe_violations(page)
    page.goto("/studio/processes/pay_progression")
    found["versions"] = axe_violations(page)
    _open_modeler(page)
    _select(page, "invite_submission")
    page.select_option("#form-file", "invite_submission.json")
    page.wait_for_selector("#form-preview label")
    found["modeler"] = axe_violations(page)
    page.goto("/studio/processes/pay_progression/migrate")
    found["migrate"] = axe_violations(page)
    failing = {name: v for name, v in found.items() if v}
    assert not failing, json.dumps(failing, indent=1)


@pytest.mark.parametrize("username", ["employee", "supervisor", "hr", "admin"])
def test_main_pages_fit_a_390_px_screen(page: Any, live_server: LiveServer, username: str) -> None:
    """Issue 19: at 390 px the menu was cut off and the case page scrolled sideways."""
    task = _open_task(live_server, "invite_submission")
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, username)
    paths = ["/", "/cases/", f"/cases/{task.instance_id}", "/notifications"]
    if username == "supervisor":
        paths.append(f"/tasks/{task.id}")
    for path in paths:
        page.goto(path)
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= 390, (path, wide)
        assert page.get_by_role("button", name="Log out").is_visible(), path


def _diagram_box(page: Any) -> dict[str, float]:
    """Where the drawn diagram lies inside its box: its edges relative to the container's, in pixels."""
    return page.evaluate("""() => {
        const box = document.querySelector('[data-instance-diagram]').getBoundingClientRect();
        const drawn = document.querySelector('[data-instance-diagram] .viewport').getBoundingClientRect();
        return { left: drawn.left - box.left, top: drawn.top - box.top, right: box.right - drawn.right,
                 bottom: box.bottom - drawn.bottom, width: drawn.width };
    }""")


def _zoom(page: Any) -> int:
    return int(page.inner_text(".diagram-zoom-level").rstrip("%"))


def test_mp_diagram_fits_zooms_and_pans(page: Any, live_server: LiveServer) -> None:
    """Issue 19: the diagram opened at 10% zoom with no zoom controls."""
    task = _open_task(live_server, "invite_submission")
    login(page, "hr")
    page.goto(f"/studio/instances/{task.instance_id}/diagram")
    page.wait_for_selector("[data-instance-diagram][data-ready=true]")
    fitted = _diagram_box(page)
    assert min(fitted["left"], fitted["top"], fitted["right"], fitted["bottom"]) >= -1, fitted  # all of it shows
    start = _zoom(page)
    page.get_by_role("button", name="Zoom in").click()
    assert _zoom(page) > start
    page.get_by_role("button", name="Zoom out").click()
    page.get_by_role("button", name="Zoom out").click()
    assert _zoom(page) < start
    page.get_by_role("button", name="Fit the diagram to the box").click()
    assert _zoom(page) == start
    page.locator("[data-instance-diagram] svg[tabindex]").focus()
    before = _diagram_box(page)["left"]
    page.keyboard.press("ArrowLeft")  # the diagram moves right: what was left of the view comes in
    assert _diagram_box(page)["left"] > before
    page.keyboard.press("+")
    assert _zoom(page) > start
    assert page.js_errors == []


def test_mp_owner_overview_shows_counts_on_the_diagram(axe_page: Any, live_server: LiveServer) -> None:
    page = axe_page
    task = _open_task(live_server, "invite_submission")
    login(page, "owner")
    page.goto("/studio/processes/pay_progression/overview")
    page.wait_for_selector("[data-instance-diagram][data-ready=true]")
    badge = page.locator('.djs-overlays[data-container-id="invite_submission"] .badge-open')
    expect(badge).to_have_text(re.compile(r"^\d+ open$"))
    row = page.locator('tr[data-element="invite_submission"] td').first
    assert badge.inner_text().split()[0] == row.inner_text()
    assert page.locator('.djs-element.ntps-open[data-element-id="invite_submission"]').count() == 1
    found = {"overview": axe_violations(page)}
    page.goto(f"/studio/instances/{task.instance_id}/diagram")  # the owner sees where the case stands
    page.wait_for_selector("[data-instance-diagram][data-ready=true]")
    assert page.locator('.djs-element.ntps-open[data-element-id="invite_submission"]').count() == 1
    assert "History" not in page.inner_text("main")
    found["case's element states"] = axe_violations(page)
    failing = {name: v for name, v in found.items() if v}
    assert not failing, json.dumps(failing, indent=1)
