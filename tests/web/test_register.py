"""OCPE's placement register over HTTP and its statistics (MP-O, MP-E, MP-H): who may see it, what it lists,
the small-count suppression in every report, the CSV exports, the period filter, the placement page, applying,
publishing and the voluntary self-identification."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from engine.core.clock import CLOCK
from engine.core.models import Setting
from engine.policies.secondment.demo import load_host_people, load_secondment_demo
from engine.policies.secondment.models import PlacementSelfIdentification
from engine.policies.secondment.register import SECONDARY, suppress
from engine.policies.secondment.settings import PLACEMENT_SETTINGS
from engine.workflow.models import ProcessInstance
from engine.workflow.runtime import Runtime
from tests.conftest import Auth
from tests.policies.secondment.test_secondment_flow import APPLICATION, CONCERN, agreed, apply, plan, started
from tests.workflow.driver import Driver

WOMEN_AND_OTHERS = [{"gender": "woman", "age_band": "25_34"}, {"gender": "woman", "age_band": "35_44"},
                    {"gender": "woman"}, {"gender": "woman", "disability": "no"}, {"gender": "woman", "cald": "yes"},
                    {"gender": "man", "atsi": "aboriginal"}, {"gender": "prefer_not_to_say"}]


@pytest.fixture
def d(app_org: Runtime) -> Driver:
    load_host_people(app_org)
    return Driver(app_org)


def _application(d: Driver, answers: dict[str, str] | None = None, employee: str = "employee",
                 **application: Any) -> int:
    case = d.start("secondment", {"route": "application", "employee": employee}, as_user=employee)
    data = {**APPLICATION["application"], **application}
    if answers is not None:
        data["self_identification"] = answers
    d.complete(case, "apply", employee, {"application": data})
    return case


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def _self_id_rows(d: Driver) -> int:
    with d.runtime.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(PlacementSelfIdentification)) or 0)


# ---------------------------------------------------------------------------------------------- suppression


def test_mp_o_a_count_under_five_is_withheld_and_so_is_the_cell_that_would_reveal_it() -> None:
    table = suppress("t", "T", [("a", "A", 7), ("b", "B", 3), ("c", "C", 6), ("d", "D", 9)], 5)
    shown = {c.key: c.shown for c in table.cells}
    # b (3) is under five; with the total shown, b = 25 - 7 - 6 - 9, so the next smallest (c) is withheld too.
    assert shown == {"a": "7", "b": "<5", "c": SECONDARY, "d": "9"}
    assert table.total_shown == "25"
    assert [c.value for c in table.cells] == [7, None, None, 9]


def test_mp_o_zero_and_small_totals_are_withheld_too() -> None:
    table = suppress("t", "T", [("a", "A", 3), ("b", "B", 0)], 5)
    assert [c.shown for c in table.cells] == ["<5", "<5"]
    assert table.total_shown == "<5"
    two_small = suppress("t", "T", [("a", "A", 8), ("b", "B", 2), ("c", "C", 1)], 5)
    assert [c.shown for c in two_small.cells] == ["8", "<5", "<5"]  # two hidden cells cannot be told apart


@given(st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=8))
def test_mp_o_no_report_shows_a_small_count_or_lets_one_be_worked_out(counts: list[int]) -> None:
    table = suppress("t", "T", [(str(i), str(i), c) for i, c in enumerate(counts)], 5)
    shown = [c for c in table.cells if not c.suppressed]
    hidden = [c for c in table.cells if c.suppressed]
    assert all(c.count >= 5 and c.shown == str(c.count) for c in shown)
    assert all(c.shown in ("<5", SECONDARY) for c in hidden)
    assert (table.total_shown == str(sum(counts))) == (sum(counts) >= 5)
    if table.total_shown != "<5":
        assert len(hidden) != 1  # one hidden cell would be the total minus the shown ones


# ---------------------------------------------------------------------------------------------- the register


def test_mp_o_the_register_is_for_ocpe_hr_and_administrators(client: FlaskClient, auth: Auth, d: Driver) -> None:
    assert client.get("/register/").status_code == 302  # to the login page
    auth.login("employee")
    assert client.get("/register/").status_code == 403
    assert client.get("/register/placements.csv").status_code == 403
    assert client.get("/register/report").status_code == 403
    for username in ("ocpe", "hr", "admin"):
        auth.logout()
        auth.login(username)
        assert client.get("/register/").status_code == 200, username


def test_mp_o_every_placement_is_listed_with_parties_dates_status_and_reporting(
        client: FlaskClient, auth: Auth, d: Driver) -> None:
    running = started(d)
    applying = _application(d, employee="engineer")
    auth.login("ocpe")
    page = client.get("/register/").get_data(as_text=True)
    for text in (f"#{running}", f"#{applying}", "Emily Wong", "Tom Nguyen", "Darwin Port Corporation", "NT Health",
                 "2026-04-01 to 2027-03-31", "In progress", "Applied", "version 1 accepted"):
        assert text in page, text
    rows = _rows(client.get("/register/placements.csv").get_data(as_text=True))
    header, by_case = rows[0], {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    assert "Reports on time" in header and "Objectives met" in header
    assert by_case[str(running)]["Status"] == "In progress"
    assert by_case[str(running)]["Host organisation"] == "NT Health"
    assert by_case[str(running)]["Start"] == "2026-04-01"
    assert by_case[str(applying)]["Secondee"] == "Tom Nguyen"
    assert not any("gender" in h.lower() for h in header)  # no self-identification in the list


def test_mp_o_small_counts_are_suppressed_in_every_report(client: FlaskClient, auth: Auth, d: Driver) -> None:
    for answers in WOMEN_AND_OTHERS:
        _application(d, answers)
    auth.login("ocpe")
    for path in ("/register/", "/register/report"):
        page = client.get(path).get_data(as_text=True)
        assert '<th scope="row">Woman or female</th><td>5</td>' in page, path
        assert '<th scope="row">Man or male</th><td>&lt;5</td>' in page, path
        assert '<th scope="row">Aboriginal</th><td>&lt;5</td>' in page, path
        assert '<th scope="row">Man or male</th><td>1</td>' not in page, path
        assert "Man or male: &lt;5" in page, path  # the chart's description says the same
    stats = _rows(client.get("/register/statistics.csv").get_data(as_text=True))
    gender = {row[2]: row[3] for row in stats[1:] if row[1] == "Gender"}
    assert gender == {"Woman or female": "5", "Man or male": "<5", "Non-binary": "<5",
                      "I use a different term": "<5", "Prefer not to say": "<5", "Not answered": "<5",
                      "Total": "7"}
    assert all(row[3] in ("<5", SECONDARY) or int(row[3]) >= 5 for row in stats[1:])


def test_mp_o_report_to_stakeholders_by_period_names_nobody(client: FlaskClient, auth: Auth, d: Driver) -> None:
    spring = started(d)  # 1 April 2026 to 31 March 2027
    april_only = _application(d, employee="engineer")  # proposed for 1 April, no end yet
    CLOCK.advance(datetime(2026, 9, 1, tzinfo=UTC) - CLOCK.now())
    autumn = _application(d, employee="clerk", preferred_start="2026-10-01")
    auth.login("ocpe")
    first = client.get("/register/?from=2026-04-01&to=2026-06-30").get_data(as_text=True)
    assert f"#{spring}</a>" in first and f"#{april_only}</a>" in first and f"#{autumn}</a>" not in first
    later = client.get("/register/?from=2026-10-01&to=2026-12-31").get_data(as_text=True)
    assert f"#{spring}</a>" in later and f"#{autumn}</a>" in later and f"#{april_only}</a>" not in later
    csv_rows = _rows(client.get("/register/placements.csv?from=2026-10-01&to=2026-12-31").get_data(as_text=True))
    assert sorted(int(r[0]) for r in csv_rows[1:]) == sorted([spring, autumn])
    report = client.get("/register/report?from=2026-10-01&to=2026-12-31")
    text = report.get_data(as_text=True)
    assert report.status_code == 200 and "2026-10-01 to 2026-12-31" in text
    for name in ("Emily Wong", "Alex Rivera", "Tom Nguyen", "NT Health"):
        assert name not in text
    assert 'class="bar-chart"' in text and 'role="img"' in text


def test_mp_o_a_bad_period_is_refused_with_the_field_named(client: FlaskClient, auth: Auth, d: Driver) -> None:
    auth.login("ocpe")
    response = client.get("/register/?from=2026-02-30&to=2026-01-01")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="f-from" name="from" value="2026-02-30"' in page and 'aria-describedby="f-from-error"' in page
    assert client.get("/register/?from=2026-05-01&to=2026-04-01").status_code == 422
    assert client.get("/register/placements.csv?to=tomorrow").status_code == 422
    assert client.get("/register/?status=everything").status_code == 422


def test_mp_o_csv_cells_cannot_become_spreadsheet_formulas(client: FlaskClient, auth: Auth, d: Driver) -> None:
    _application(d, preferred_host="=HYPERLINK(\"http://x.example\",\"click\")")
    auth.login("ocpe")
    rows = _rows(client.get("/register/placements.csv").get_data(as_text=True))
    assert rows[1][3] == "'=HYPERLINK(\"http://x.example\",\"click\")"


# ---------------------------------------------------------------------------------------------- a placement's page


def test_mp_0_a_placements_page_shows_each_version_and_who_accepted_it(
        client: FlaskClient, auth: Auth, d: Driver) -> None:
    case = started(d)
    d.complete(case, "raise_concern_employee", "employee", CONCERN)
    for username in ("ocpe", "employee", "host", "supervisor"):
        auth.logout()
        auth.login(username)
        page = client.get(f"/register/{case}").get_data(as_text=True)
        assert "Versions of the bilateral agreement" in page, username
        assert "accepted" in page and "Workload doubled" in page and "Induction" in page, username
    auth.logout()
    auth.login("clerk")  # takes no part in the placement
    assert client.get(f"/register/{case}").status_code == 404


# ---------------------------------------------------------------------------------------------- staff pages


def test_mp_e_applying_starts_the_case_and_opens_the_application(client: FlaskClient, auth: Auth, d: Driver) -> None:
    auth.login("employee")
    assert "your supervisor (supervisor)" in client.get("/register/apply").get_data(as_text=True)
    with d.runtime.db.read() as s:
        before = s.scalar(select(func.count()).select_from(ProcessInstance))
    bad = client.post("/register/apply", data={"home_contact": "nobody"})
    assert bad.status_code == 422 and 'aria-invalid="true"' in bad.get_data(as_text=True)
    with d.runtime.db.read() as s:
        assert s.scalar(select(func.count()).select_from(ProcessInstance)) == before
    response = client.post("/register/apply", data={"home_contact": ""})
    assert response.status_code == 302 and "/tasks/" in response.headers["Location"]
    with d.runtime.db.read() as s:
        row = s.scalars(select(ProcessInstance).order_by(ProcessInstance.id.desc())).first()
        assert row is not None and row.process_key == "secondment"
        assert (row.data["employee"], row.data["home_contact"], row.data["route"]) == (
            "employee", "supervisor", "application")


def test_mp_h_a_published_opportunity_is_listed_until_it_closes(client: FlaskClient, auth: Auth, d: Driver) -> None:
    auth.login("supervisor")
    response = client.post("/register/publish")
    assert response.status_code == 302 and "/tasks/" in response.headers["Location"]
    task_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    d.runtime.complete_task(d.user("supervisor"), task_id, {"opportunity": {
        "title": "Harbour policy officer", "summary": "Six months in the harbour policy team.",
        "host_organisation": "NT Health", "development_benefits": "Policy writing.", "eligibility": "All staff.",
        "proposed_start": "2026-05-01", "proposed_months": 6, "closing_date": "2026-03-20",
        "how_to_apply": "Talk to Sam Okafor."}})
    auth.logout()
    auth.login("clerk")
    assert "Harbour policy officer" in client.get("/register/opportunities").get_data(as_text=True)
    CLOCK.advance(datetime(2026, 3, 21, tzinfo=UTC) - CLOCK.now())
    assert "Harbour policy officer" not in client.get("/register/opportunities").get_data(as_text=True)


def test_mp_o_only_the_secondee_answers_the_self_identification(client: FlaskClient, auth: Auth, d: Driver) -> None:
    case = agreed(d)
    auth.login("host")  # a party to the placement, but not the secondee
    assert client.get(f"/register/{case}/self-identification").status_code == 403
    assert client.post(f"/register/{case}/self-identification", data={"gender": "man"}).status_code == 403
    auth.logout()
    auth.login("clerk")  # not a party at all: the placement's existence is private
    assert client.get(f"/register/{case}/self-identification").status_code == 404
    auth.logout()
    auth.login("employee")
    assert client.get(f"/register/{case}/self-identification").status_code == 200
    bad = client.post(f"/register/{case}/self-identification", data={"gender": "robot"})
    assert bad.status_code == 422 and "q-gender-error" in bad.get_data(as_text=True)
    assert _self_id_rows(d) == 0
    ok = client.post(f"/register/{case}/self-identification", data={"gender": "woman", "cald": "prefer_not_to_say"})
    assert ok.status_code == 302
    with d.runtime.db.read() as s:
        row = s.scalars(select(PlacementSelfIdentification)).one()
        assert (row.gender, row.cald, row.age_band) == ("woman", "prefer_not_to_say", None)
    assert "woman" not in str(d.instance(case).data)  # never part of the case
    client.post(f"/register/{case}/self-identification", data={"gender": "", "cald": ""})
    assert _self_id_rows(d) == 0  # all blank withdraws the answers


def test_mp_l_a_concern_shows_on_the_hosts_task_exactly_as_typed(client: FlaskClient, auth: Auth, d: Driver) -> None:
    case = started(d)
    d.complete(case, "raise_concern_employee", "employee", {"concern": {
        "category": "work", "details": "Workload is {{ 7 * 7 }} hours <b>a week</b>."}})
    task = d.open_task(case, "discuss_concern")
    auth.login("host")
    page = client.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert "Workload is {{ 7 * 7 }} hours &lt;b&gt;a week&lt;/b&gt;." in page
    assert "49 hours" not in page


def test_mp_l_the_periods_the_policy_leaves_open_are_settings(client: FlaskClient, auth: Auth, d: Driver) -> None:
    auth.login("hr")
    assert client.get("/register/settings").status_code == 403
    auth.logout()
    auth.login("admin")
    form = {spec.key: str(spec.default) for spec in PLACEMENT_SETTINGS}
    bad = client.post("/register/settings", data={**form, "secondment.induction_days": "0",
                                                  "register.suppression_threshold": "2"})
    assert bad.status_code == 422 and 'aria-invalid="true"' in bad.get_data(as_text=True)
    with d.runtime.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Setting)) == 0  # nothing saved
    ok = client.post("/register/settings", data={**form, "secondment.induction_days": "10",
                                                 "secondment.notice_days": "28"})
    assert ok.status_code == 302
    case = apply(d)
    plan(d, case)
    draft = d.instance(case).data["agreement"]["schedule2"]
    assert draft["timing"]["induction_days"] == 10 and draft["early_termination"]["notice_days"] == 28


def test_mp_h_the_demo_publishes_an_opportunity_once(client: FlaskClient, auth: Auth, app_org: Runtime) -> None:
    first = list(load_secondment_demo(app_org))
    again = list(load_secondment_demo(app_org))
    assert len(first) == 3 and len(again) == 1  # people only, the second time
    auth.login("host2")
    assert "Workforce data analyst, six months" in client.get("/register/opportunities").get_data(as_text=True)


def test_mp_h_task_pages_name_people_not_usernames(client: FlaskClient, auth: Auth, d: Driver) -> None:
    """Issue 19: "Consider the placement application of employee"; the instructions now show the person's name
    (the `name` filter, fed with the names of the people the case's data holds)."""
    case = d.start("secondment", {"route": "application", "employee": "employee", "home_contact": "supervisor"},
                   as_user="employee")
    d.complete(case, "apply", "employee", APPLICATION)
    task = d.open_task(case, "consider_application")
    auth.login("supervisor")
    page = client.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert "Consider the placement application of Emily Wong" in page
    assert "application of employee" not in page
