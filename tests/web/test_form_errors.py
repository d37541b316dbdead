"""Task pages that catch mistakes before they are saved (issue 19): GOV.UK's error summary at the top ("There is a
problem", each error a link to its field), each error beside its field, the typed values kept, nothing saved; and
messages a person understands instead of the validator's own wording."""

from __future__ import annotations

from typing import Any

import lxml.html
from flask.testing import FlaskClient
from sqlalchemy import select

from engine.policies.secondment.demo import load_host_people
from engine.workflow.forms import validate
from engine.workflow.models import HumanTask, ProcessInstance
from engine.workflow.runtime import Runtime
from tests.conftest import Auth
from tests.policies.pay_progression.test_pay_progression import START
from tests.policies.secondment.test_secondment_flow import started
from tests.workflow.driver import Driver
from web.formrender import RenderedForm, render_form


def _task(runtime: Runtime, case: int, name: str) -> HumanTask:
    with runtime.db.read() as s:
        return s.scalars(select(HumanTask).where(HumanTask.instance_id == case, HumanTask.name == name,
                                                 HumanTask.state == "open")).one()


def _page(response: Any) -> Any:
    return lxml.html.fromstring(response.get_data(as_text=True))


def _summary(page: Any) -> Any:
    [box] = page.xpath('//div[@class="error-summary"]')
    return box


def _links_land_on_the_page(page: Any) -> list[str]:
    hrefs = [a.get("href") for a in _summary(page).xpath(".//a")]
    for href in hrefs:
        assert href.startswith("#") and page.xpath(f'//*[@id="{href[1:]}"]'), href
    return hrefs


def test_d19_3_2_a_mistake_shows_there_is_a_problem_linked_to_its_field_and_nothing_is_saved(
        client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    case = app_org.start(None, "pay_progression", START, actor="hr")  # assessment date 30 June 2026
    task = _task(app_org, case, "invite_submission")
    auth.login("supervisor")
    response = client.post(f"/tasks/{task.id}", data={"invitation.message": "Please submit by July.",
                                                      "invitation.submission_due": "2026-07-15"})
    assert response.status_code == 422
    page = _page(response)
    assert page.findtext(".//title").startswith("Error: ")
    box = _summary(page)
    assert box.get("tabindex") == "-1" and box.get("aria-labelledby") == "error-summary-title"
    assert box.xpath('.//div[@role="alert"]/h2[@id="error-summary-title"]')[0].text == "There is a problem"
    # the summary comes first, before the page's heading and its form
    html = response.get_data(as_text=True)
    assert html.index('class="error-summary"') < html.index("<h1>") < html.index('<form method="post" novalidate')
    assert _links_land_on_the_page(page) == ["#f-invitation-submission_due"]
    [link] = box.xpath(".//a")
    assert "Please make your submission by" in link.text_content()
    assert "in advance of the annual assessment date, 30 June 2026" in link.text_content()
    # beside the field: the message, tied to the input, with the value as typed
    [field] = page.xpath('//input[@id="f-invitation-submission_due"]')
    assert field.get("aria-invalid") == "true" and field.get("value") == "2026-07-15"
    assert "f-invitation-submission_due-error" in field.get("aria-describedby").split()
    [beside] = page.xpath('//p[@id="f-invitation-submission_due-error"]')
    assert "Error:" in beside.text_content() and "30 June 2026" in beside.text_content()
    assert page.xpath('//textarea[@name="invitation.message"]')[0].text == "Please submit by July."
    # nothing was saved: the same task is open and the case holds no invitation
    assert _task(app_org, case, "invite_submission").id == task.id
    with app_org.db.read() as s:
        row = s.get_one(ProcessInstance, case)
        assert "invitation" not in row.data
    assert "Done. The case has moved on." not in html


def test_mp_t_a_choice_group_links_to_its_first_choice_with_a_message_a_person_understands(
        client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    load_host_people(app_org)
    case = started(Driver(app_org))
    task = _task(app_org, case, "induct")
    auth.login("host")
    response = client.post(f"/tasks/{task.id}", data={
        "induction.inducted_on": "2030-04-02", "induction.covered": ["business"], "induction.resources": "A desk."})
    assert response.status_code == 422
    page = _page(response)
    hrefs = _links_land_on_the_page(page)
    assert hrefs == ["#f-induction-inducted_on", "#f-induction-covered-opt-0"]  # in the order of the form
    text = _summary(page).text_content()
    assert "The induction covered: Must include Work health and safety." in text
    assert "does not contain" not in response.get_data(as_text=True)
    assert "between the start, 1 April 2026, and the end, 31 March 2027" in text
    checked = page.xpath('//input[@name="induction.covered"][@checked]')
    assert [c.get("value") for c in checked] == ["business"]  # what was ticked is still ticked


def test_d19_3_1_an_error_with_no_field_is_in_the_summary_without_a_link(client: FlaskClient, app_org: Runtime,
                                                                         auth: Auth) -> None:
    case = app_org.start(None, "performance_agreement", {"employee": "employee"}, actor="hr")
    task = _task(app_org, case, "set_up_agreement")
    auth.login("supervisor")
    response = client.post(f"/tasks/{task.id}", data={
        "agreement.start": "2026-03-09", "agreement.targets.0": "Run the berth system",
        "agreement.supervisor": "supervisor", "agreement.approver": "nobody"})
    assert response.status_code == 422  # the diagram's own check: it names no field
    page = _page(response)
    [item] = _summary(page).xpath(".//li")
    assert not item.xpath(".//a") and "no person with the username nobody (approver)" in item.text_content()
    assert _task(app_org, case, "set_up_agreement").id == task.id


def test_a_task_page_without_errors_has_no_summary(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    case = app_org.start(None, "pay_progression", START, actor="hr")
    auth.login("supervisor")
    response = client.get(f"/tasks/{_task(app_org, case, 'invite_submission').id}")
    page = _page(response)
    assert response.status_code == 200 and not page.xpath('//div[@class="error-summary"]')
    assert not page.findtext(".//title").startswith("Error")
    assert not page.xpath('//*[@aria-invalid]')


# ------------------------------------------------------------------------------------- the renderer and messages


FORM = {"type": "object", "properties": {
    "name": {"type": "string", "title": "Your name"},
    "kind": {"type": "string", "title": "Kind", "enum": ["a", "b"]},
    "when": {"type": "string", "title": "When", "format": "date"},
    "secret": {"type": "string"}}}


def test_the_summary_lists_form_errors_first_then_fields_in_page_order_then_the_rest() -> None:
    errors = {"when": ["Must be a date (YYYY-MM-DD)."], "": ["The process could not continue."],
              "name": ["This field is required."], "ghost": ["Lost."], "secret": ["Hidden problem."]}
    form = render_form(FORM, {"kind": {"ui:widget": "radio"}, "secret": {"ui:widget": "hidden"}}, {}, errors)
    assert isinstance(form, RenderedForm)
    items = lxml.html.fromstring(str(form.summary)).xpath("//li")
    assert [(li.text_content(), [a.get("href") for a in li.xpath("a")]) for li in items] == [
        ("The process could not continue.", []),
        ("Your name: This field is required.", ["#f-name"]),
        ("When: Must be a date (YYYY-MM-DD).", ["#f-when"]),
        ("ghost: Lost.", []), ("secret: Hidden problem.", [])]
    assert 'class="form-errors"' not in str(form.fields) and 'id="f-name-error"' in str(form.fields)
    assert str(form).startswith('<div class="form-errors" role="alert">')  # as text: what it always was
    radio = render_form(FORM, {"kind": {"ui:widget": "radio"}}, {}, {"kind": ["Pick one."]})
    assert 'href="#f-kind-opt-0"' in str(radio.summary) and 'id="f-kind-opt-0"' in str(radio.fields)
    assert str(render_form(FORM, None, {}, {}).summary) == ""


def test_validator_wording_never_reaches_a_person() -> None:
    schema = {"type": "object", "additionalProperties": False, "properties": {
        "covered": {"type": "array", "items": {"type": "string", "oneOf": [
            {"const": "business", "title": "The organisation's business"},
            {"const": "safety", "title": "Work health and safety"}]}, "contains": {"const": "safety"}},
        "agreed": {"type": "boolean", "const": True},
        "flag": {"type": "boolean"},
        "never": {"not": {"const": "x"}}}}
    errors = validate(schema, {"covered": ["business"], "agreed": False, "flag": "yes", "never": "x", "extra": 1})
    assert errors == {"covered": ["Must include Work health and safety."], "agreed": ["Must be ticked (yes)."],
                      "flag": ["Must be yes or no."], "never": ["This value is not allowed here."],
                      "": ["This form has no field named 'extra'."]}
    for messages in errors.values():
        assert not any("[" in m or "schema" in m for m in messages), messages
