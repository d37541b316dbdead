"""Process owners see where the cases of their processes stand (issue 19): the overview page, a case's diagram as
element states only, and the migrate page linking only what the viewer may open. No names, submissions or
reasons reach a process owner who has no other reason to see the case."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from engine.workflow.runtime import Runtime
from tests.conftest import Auth
from tests.web.test_studio import _pay, _post
from tests.workflow.test_migration import edited
from tests.workflow.test_overview import three_cases

#: What the cases hold that a process owner must not see: the employees' names, the invitation's message and
#: the reason for declining.
PRIVATE = ("Emily Wong", "Tom Nguyen", "Quokka", "zebra", "Sam Okafor")


def _text(response: object) -> str:
    return response.get_data(as_text=True)  # type: ignore[attr-defined,no-any-return]


def _private_in(page: str) -> list[str]:
    return [p for p in PRIVATE if p in page]


def test_mp_owner_sees_the_overview_with_counts_and_no_case_data(client: FlaskClient, app_org: Runtime,
                                                                  auth: Auth) -> None:
    at_invite, at_submission, declined = three_cases(app_org)
    auth.login("owner")
    response = client.get("/studio/processes/pay_progression/overview")
    page = _text(response)
    assert response.status_code == 200 and _private_in(page) == []
    assert re.search(r'data-count="total">3<', page) and re.search(r'data-count="completed">1<', page)
    assert re.search(r'data-count="open">2<', page)
    row = re.search(r'<tr data-element="invite_submission">.*?</tr>', page, re.S)
    assert row is not None and re.findall(r"<td>(\d+)</td>", row.group(0)) == ["1", "0", "2"]
    assert 'data-json="overview-data"' in page and "<script>" not in page  # data in a JSON block, no inline script
    for case in (at_invite, at_submission):  # each running case links to where it stands, not to the case
        assert f'href="/studio/instances/{case}/diagram"' in page and f'href="/cases/{case}"' not in page
    assert f"/instances/{declined}/" not in page  # ended cases are counted, not listed
    one = _text(client.get("/studio/processes/pay_progression/overview?version=1"))
    assert re.search(r'data-count="total">3<', one)
    assert "/studio/processes/pay_progression/overview" in _text(client.get("/studio/processes/pay_progression"))


def test_mp_overview_is_for_owners_and_admins_only(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    three_cases(app_org)
    assert client.get("/studio/processes/pay_progression/overview").status_code == 302  # to the login page
    for username in ("hr", "employee", "supervisor", "ocpe"):
        auth.login(username)
        assert client.get("/studio/processes/pay_progression/overview").status_code == 403
        auth.logout()
    auth.login("admin")
    assert client.get("/studio/processes/pay_progression/overview").status_code == 200
    assert client.get("/studio/processes/no_such/overview").status_code == 404
    assert client.get("/studio/processes/pay_progression/overview?version=7").status_code == 404
    bad = client.get("/studio/processes/pay_progression/overview?version=1%3Cb%3E")
    assert bad.status_code in (400, 422) and "version" in _text(bad) and "<b>" not in _text(bad)


def test_mp_owner_opens_a_cases_diagram_as_element_states_only(client: FlaskClient, app_org: Runtime,
                                                                auth: Auth) -> None:
    """Issue 19: a process owner could not open the diagram of a case of a process they own (404)."""
    at_invite, at_submission, _declined = three_cases(app_org)
    auth.login("owner")
    data = client.get(f"/studio/instances/{at_submission}/diagram.json").json
    assert data is not None and data["open"] == ["make_submission"] and "invite_submission" in data["completed"]
    assert data["names"] == {} and _private_in(str(data)) == [] and "title" not in data
    page = client.get(f"/studio/instances/{at_invite}/diagram")
    assert page.status_code == 200 and "data-instance-diagram" in _text(page)
    assert _private_in(_text(page)) == [] and "History" not in _text(page)
    assert client.get(f"/cases/{at_invite}").status_code == 404  # the case itself stays private
    auth.logout()
    auth.login("clerk")  # neither sees the case nor owns the process
    assert client.get(f"/studio/instances/{at_invite}/diagram").status_code == 404
    assert client.get(f"/studio/instances/{at_invite}/diagram.json").status_code == 404
    auth.logout()
    auth.login("supervisor")  # may see the case: the whole page, as before
    page = client.get(f"/studio/instances/{at_invite}/diagram")
    assert "History" in _text(page) and "Emily Wong" in _text(page)


def test_mp_migrate_page_links_only_what_the_viewer_may_open(client: FlaskClient, app_org: Runtime,
                                                            auth: Auth) -> None:
    at_invite, at_submission, _declined = three_cases(app_org)
    auth.login("owner")
    changed = edited(_pay(app_org), rename={"make_submission": "make_submission_v2"})
    assert _post(client, "/studio/api/deploy", {"key": "pay_progression", "filename": "pay_progression.bpmn",
                                                "xml": changed, "forms": {}}).status_code == 201
    page = _text(client.get("/studio/processes/pay_progression/migrate?from=1&to=2"))
    for case in (at_invite, at_submission):
        assert f'href="/studio/instances/{case}/diagram"' in page and f'href="/cases/{case}"' not in page
    assert _private_in(page) == []
    auth.logout()
    auth.login("admin")  # sees every case: links to the cases themselves
    page = _text(client.get("/studio/processes/pay_progression/migrate?from=1&to=2"))
    assert f'href="/cases/{at_invite}"' in page and "Emily Wong" in page
