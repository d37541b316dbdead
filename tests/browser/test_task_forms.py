"""Every user task form of both policies in the real chromium (issue 19's "Done when").

For each form (tests/browser/task_form_cases.py says how to reach its task and what to type), as the person who
works it: every control has a label that names it (Playwright's get_by_label finds the control by it), radios and
checkboxes sit in a fieldset with a legend, choices show labels and never codes, axe-core finds nothing serious;
a required field left empty and a cross-field rule broken are refused with GOV.UK's error summary first on the page,
its link pointing at the field, and the message beside the field, and nothing is saved (the task stays open, the
case's data is unchanged); then the valid answers complete the task.

One server and one logged-in tab per person for the whole module, over a copy of the demo database; each test
starts its own case at T0 and drives it through the runtime (moving the frozen clock where a timer must pass).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from playwright.sync_api import expect
from sqlalchemy import select

from engine.core.config import PROJECT_ROOT
from engine.workflow.forms import show
from engine.workflow.models import HumanTask, ProcessInstance
from tests.browser.conftest import LiveServer, axe_violations, serve_copy
from tests.browser.servers import Tabs
from tests.browser.task_form_cases import CASES, FormCase
from tests.workflow.driver import Driver

#: a code where a label belongs: "not_approve", "25_34", "torres_strait_islander"
CODE = re.compile(r"[a-z0-9]+(_[a-z0-9]+)+")
CONTROLS = "main form input:not([type=hidden]), main form select, main form textarea"


@pytest.fixture(scope="module")
def server(demo_database: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve_copy(demo_database, tmp_path_factory.mktemp("task-forms"), long_sessions=True) as live:
        yield live


@pytest.fixture(scope="module")
def tabs(browser: Any, server: LiveServer) -> Iterator[Tabs]:
    people = Tabs(browser, server, bypass_csp=True)  # only to inject axe-core
    yield people
    people.close()


def _user_task_forms() -> dict[str, set[str]]:
    """Form file -> the user tasks that show it, read from every diagram in processes/."""
    forms: dict[str, set[str]] = {}
    for path in sorted((PROJECT_ROOT / "processes").glob("*/*.bpmn")):
        for task in etree.parse(str(path)).iter("{*}userTask"):
            props = {p.get("name"): p.get("value") for p in task.iter("{*}property")}
            if props.get("formJsonSchemaFilename"):
                forms.setdefault(str(props["formJsonSchemaFilename"]), set()).add(str(task.get("id")))
    return forms


def test_every_task_form_has_a_browser_case() -> None:
    """A new form (or a form a diagram no longer uses) fails here until task_form_cases.py covers it."""
    used = _user_task_forms()
    files = {p.name for p in (PROJECT_ROOT / "forms").glob("*/*.json") if not p.name.endswith("_ui.json")}
    assert set(CASES) == set(used), "forms without a browser case: " + ", ".join(sorted(set(used) - set(CASES)))
    assert files == set(used), f"form files no user task shows: {sorted(files - set(used))}"
    for case in CASES.values():
        assert case.task in used[case.form], f"{case.form} is not the form of {case.task}"
        schema = json.loads(next((PROJECT_ROOT / "forms").glob(f"*/{case.form}")).read_text(encoding="utf-8"))
        assert schema.get("type") == "object"
        if schema.get("x-rules"):  # a form with cross-field rules breaks one of them in the browser
            assert case.broken is not None, f"{case.form} has x-rules but its browser case breaks none"


def _field_id(path: str) -> str:
    """The id web.formrender gives a field's control (its error is this id + "-error")."""
    return "f-" + re.sub(r"[^A-Za-z0-9_-]", "_", path.replace(".", "-"))


def _open_task(server: LiveServer, case: int, name: str) -> HumanTask:
    with server.runtime.db.read() as s:
        task = s.scalars(select(HumanTask).where(HumanTask.instance_id == case, HumanTask.name == name,
                                                 HumanTask.state == "open").order_by(HumanTask.id.desc())).first()
        assert task is not None, f"case {case} has no open {name}"
        s.expunge(task)
        return task


def _saved(server: LiveServer, case: int, task_id: int) -> tuple[Any, ...]:
    """What a refused submission must leave as it was: the case's data and status, and the task's state."""
    with server.runtime.db.read() as s:
        row = s.get_one(ProcessInstance, case)
        task = s.get_one(HumanTask, task_id)
        return json.dumps(row.data, sort_keys=True), row.status, task.state, task.completed_by


def _assert_labelled(page: Any) -> None:
    """Each control's label names it (get_by_label finds it); radios and checkboxes of a group have a legend."""
    controls = page.evaluate("""(selector) => [...document.querySelectorAll(selector)].map((e) => {
        const label = e.id ? document.querySelector(`label[for="${CSS.escape(e.id)}"]`) : null;
        const group = e.closest('.option') ? e.closest('fieldset') : null;
        return {id: e.id, type: e.type, label: label ? label.innerText.trim() : '',
                legend: group ? (group.querySelector('legend')?.innerText || '').trim() : null};
    })""", CONTROLS)
    assert controls, "the form has no controls"
    for control in controls:
        assert control["id"] and control["label"], f"a control without a label: {control}"
        found = page.get_by_label(control["label"], exact=True).evaluate_all("(els) => els.map((e) => e.id)")
        assert control["id"] in found, f"get_by_label({control['label']!r}) does not find #{control['id']}"
        assert control["legend"] != "", f"#{control['id']}: its group has no legend"


def _assert_choices_labelled(page: Any) -> None:
    """Radios, checkboxes and options show a label, never the code stored; a radio or checkbox sits on the line of
    its own label, to its left (issue 19: each sat on a line of its own above its label)."""
    choices = page.evaluate("""() => {
        const boxes = [...document.querySelectorAll('main form .option input')].map((e) => {
            const label = document.querySelector(`label[for="${CSS.escape(e.id)}"]`);
            const box = e.getBoundingClientRect(), text = label.getBoundingClientRect();
            const beside = box.right <= text.left && box.top < text.bottom && text.top < box.bottom;
            return [e.value, label.innerText.trim(), beside];
        });
        const options = [...document.querySelectorAll('main form select option')].filter((o) => o.value)
            .map((o) => [o.value, o.textContent.trim(), true]);
        return boxes.concat(options);
    }""")
    for value, label, beside in choices:
        assert label and label != value and not CODE.fullmatch(label), f"choice {value!r} shows {label!r}"
        assert beside, f"the control of {label!r} is not beside its label"


def _assert_instructions_rendered(page: Any) -> None:
    """The instructions are Markdown rendered (issue 19: "## Invite ..." and "**at least two months**" showed)."""
    section = page.locator("section[aria-label=Instructions]")
    if section.count():
        text = section.inner_text()
        assert "**" not in text and not re.search(r"(?m)^#{1,6} ", text), f"raw Markdown: {text[:200]}"


def _fill(page: Any, values: dict[str, Any]) -> None:
    """Type each value into its control by field path (a list ticks exactly those boxes; None clears)."""
    for path, value in values.items():
        controls = page.locator(f'main form [name="{path}"]')
        assert controls.count(), f"no control for {path}"
        first = controls.first
        kind = first.evaluate("(e) => e.tagName.toLowerCase() + ':' + (e.type || '')")
        if kind.startswith("select"):
            first.select_option("" if value is None else show(value))
        elif kind == "input:radio":
            if value is not None:
                page.locator(f'main form [name="{path}"][value="{show(value)}"]').check()
        elif kind == "input:checkbox" and isinstance(value, list):
            for box in controls.all():
                box.set_checked(box.get_attribute("value") in {show(v) for v in value})
        elif kind == "input:checkbox":
            first.set_checked(bool(value))
        else:
            first.fill("" if value is None else show(value))


def _submit(page: Any) -> None:
    with page.expect_navigation():
        page.locator("main form").get_by_role("button", name="Submit").click()


def _assert_refused(page: Any, path: str) -> None:
    """The error summary is first on the page and links to the field; the message is beside the field."""
    summary = page.locator(".error-summary")
    expect(summary).to_be_visible()
    assert page.evaluate("() => document.querySelector('main').firstElementChild.classList.contains('error-summary')")
    assert page.title().startswith("Error: ")
    fid = _field_id(path)
    links = summary.locator(f'a[href="#{fid}"], a[href="#{fid}-opt-0"]')
    assert links.count() >= 1, f"the summary does not link to {path}: {summary.inner_text()}"
    target = str(links.first.get_attribute("href"))[1:]
    error = page.locator(f"#{fid}-error")
    expect(error).to_be_visible()
    beside = page.evaluate("""([target, error]) => {
        const box = (id) => document.getElementById(id).closest('.field, fieldset');
        return box(target) !== null && box(target) === box(error);
    }""", [target, f"{fid}-error"])
    assert beside, f"the error of {path} is not beside its field"
    assert f"{fid}-error" in (page.locator(f"#{target}").get_attribute("aria-describedby") or "")
    links.first.click()
    assert page.url.endswith(f"#{target}")


@pytest.mark.browser
@pytest.mark.parametrize("form", list(CASES))
def test_task_form_labels_errors_and_submission(form: str, server: LiveServer, tabs: Tabs) -> None:
    spec: FormCase = CASES[form]
    case = spec.reach(Driver(server.runtime))
    task = _open_task(server, case, spec.task)
    assert task.form == spec.form
    page = tabs.open(spec.user, f"/tasks/{task.id}")
    expect(page.get_by_role("heading", level=1)).to_have_text(task.title)
    _assert_labelled(page)
    _assert_choices_labelled(page)
    _assert_instructions_rendered(page)
    before = _saved(server, case, task.id)

    _fill(page, {**spec.fill, spec.blank: None})
    _submit(page)
    _assert_refused(page, spec.blank)
    assert _saved(server, case, task.id) == before, "a refused submission changed the case"
    assert axe_violations(page) == [], form  # the page with every control, its errors and the summary
    if spec.broken is not None:
        broken, field = spec.broken
        _fill(page, {**spec.fill, **spec.later, **broken})
        _submit(page)
        _assert_refused(page, field)
        assert _saved(server, case, task.id) == before, "a refused submission changed the case"

    _fill(page, {**spec.fill, **spec.later})
    _submit(page)
    expect(page.locator(".flash")).to_contain_text("Done. The case has moved on.")
    assert _saved(server, case, task.id)[2] == "completed"
    assert page.js_errors == []
    _cancel(server, case)


def _cancel(server: LiveServer, case: int) -> None:
    """A placement left running fires its report timers in every later test that moves the clock: end it."""
    with server.runtime.db.read() as s:
        running = s.get_one(ProcessInstance, case).status == "running"
    if running:
        server.runtime.cancel(Driver(server.runtime).user("admin"), case, "Browser test done")
