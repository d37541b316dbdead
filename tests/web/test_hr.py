"""HR bulk work on the web and the command line: the CSV import and the year's pay progression cycles."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from engine.core.clock import CLOCK
from engine.core.errors import Conflict
from engine.core.models import AuditEvent, BulkJob
from engine.people.models import Leave, Person
from engine.policies.pay_progression import cycles as bulk
from engine.workflow.models import ProcessInstance
from engine.workflow.runtime import Runtime
from tests.conftest import Auth
from tests.web.api_helpers import row_counts, start_case
from web.hr import wait_for_jobs

HEADER = "username,name,email,classification,pay_point,organisation,supervisor,manager,commenced_on"
GOOD = (f"{HEADER}\n"
        "engineer,Tom Nguyen,tom.nguyen@ports.example,SPPO1,SPPO1-2,DPC,supervisor,,2024-01-15\n"
        "newbie,Nadia Bell,nadia@ports.example,SPAO2,SPAO2-1,DPC,supervisor,,2026-02-02\n")
WINDOW = {"from": "2026-12-01", "to": "2027-01-31"}  # the demo staff commenced on 2024-01-15


def _upload(client: FlaskClient, text: str | bytes, name: str = "people.csv") -> object:
    data = text.encode() if isinstance(text, str) else text
    return client.post("/hr/people/import", data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def _cases(runtime: Runtime) -> dict[str, ProcessInstance]:
    with runtime.db.read() as s:
        rows = s.scalars(select(ProcessInstance).order_by(ProcessInstance.id)).all()
        return {r.data["employee"]: r for r in rows}


# ------------------------------------------------------------------------------------------- the CSV import


def test_import_preview_then_confirm(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    auth.login("hr")
    before = row_counts(app_org)
    preview = _upload(client, GOOD)
    assert preview.status_code == 200  # type: ignore[attr-defined]
    page = preview.get_data(as_text=True)  # type: ignore[attr-defined]
    assert "1 new, 1 updated, 0 unchanged" in page
    assert re.search(r"engineer</td><td>updated", page) and "tom.nguyen@ports.example" in page
    assert re.search(r"newbie</td><td>new", page)
    counts = row_counts(app_org)
    assert counts.pop("bulk_job") == before.pop("bulk_job") + 1 and counts == before  # only the staged upload
    action = re.search(r'action="(/hr/people/import/\d+)"', page)
    assert action
    done = client.post(action.group(1))
    assert done.status_code == 302 and done.headers["Location"].endswith("/people/")
    assert "1 new, 1 updated, 0 unchanged" in client.get("/people/").get_data(as_text=True)
    with app_org.db.read() as s:
        assert s.scalars(select(Person).where(Person.username == "newbie")).one().classification == "SPAO2"
        assert s.scalars(select(AuditEvent).where(AuditEvent.kind == "people_imported")).one().actor == "hr"
    assert client.post(action.group(1)).status_code == 404  # imported once, not twice


def test_import_preview_names_the_organisations_it_would_create(client: FlaskClient, app_org: Runtime,
                                                                auth: Auth) -> None:
    """Issue 19: an organisation code not on record (ZZZ for DPC) is created by the import; the preview says so."""
    auth.login("hr")
    page = _upload(client, GOOD.replace("newbie,Nadia Bell,nadia@ports.example,SPAO2,SPAO2-1,DPC",
                                        "newbie,Nadia Bell,nadia@ports.example,SPAO2,SPAO2-1,ZZZ"))
    text = page.get_data(as_text=True)  # type: ignore[attr-defined]
    assert "Organisations not on record" in text and "ZZZ (line 3)" in text


def test_import_with_bad_rows_lists_each_and_imports_nothing(client: FlaskClient, app_org: Runtime,
                                                             auth: Auth) -> None:
    auth.login("hr")
    before = row_counts(app_org)
    bad = GOOD + "broken,,not-an-email,SPAO1,,,nobody,,2026-13-01\n"
    response = _upload(client, bad)
    assert response.status_code == 422  # type: ignore[attr-defined]
    page = response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert "nothing was imported" in page
    for field in ("name", "email", "supervisor", "commenced_on"):
        assert re.search(rf"<td>4</td><td><code>{field}</code></td>", page), field
    assert "/hr/people/import/" not in page  # no way to confirm
    assert row_counts(app_org) == before


def test_import_stale_preview_is_shown_again_not_imported(client: FlaskClient, app_org: Runtime,
                                                          auth: Auth) -> None:
    auth.login("hr")
    page = _upload(client, GOOD).get_data(as_text=True)  # type: ignore[attr-defined]
    action = re.search(r'action="(/hr/people/import/\d+)"', page)
    assert action
    with app_org.db.unit_of_work() as uow:  # someone edits Tom's record meanwhile
        uow.session.scalars(select(Person).where(Person.username == "engineer")).one().pay_point = "SPPO1-3"
        uow.commit()
    stale = client.post(action.group(1))
    assert stale.status_code == 409 and "changed since the preview" in stale.get_data(as_text=True)
    with app_org.db.read() as s:
        assert s.scalars(select(Person).where(Person.username == "newbie")).first() is None
    assert client.post(action.group(1)).status_code == 302  # confirming the new preview imports it


def test_import_refuses_what_is_not_a_csv_file(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    auth.login("hr")
    assert client.post("/hr/people/import", data={}, content_type="multipart/form-data").status_code == 422
    response = _upload(client, b"\xff\xfeusername\n")
    assert response.status_code == 422 and b"not UTF-8" in response.data  # type: ignore[attr-defined]


def test_hr_pages_are_for_hr_and_admins(client: FlaskClient, app_org: Runtime, auth: Auth) -> None:
    auth.login("supervisor")
    for path in ("/hr/", "/hr/people/import", "/hr/annual"):
        assert client.get(path).status_code == 403
    assert _upload(client, GOOD).status_code == 403  # type: ignore[attr-defined]
    assert client.post("/hr/annual/start", data=WINDOW).status_code == 403
    auth.logout()
    auth.login("admin")
    page = client.get("/hr/").get_data(as_text=True)
    assert "Import people" in page and 'href="/hr/"' in page  # the nav shows HR tools


def test_cli_people_import(app: Flask, app_org: Runtime, tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(GOOD)
    bad.write_text(GOOD + "x y,,bad,SPAO1,,,,,\n")
    dry = runner.invoke(args=["people", "import", str(good), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "line 2: engineer: updated (email:" in dry.output and "line 3: newbie: new" in dry.output
    assert "dry run, nothing imported: 1 new, 1 updated, 0 unchanged" in dry.output
    failed = runner.invoke(args=["people", "import", str(bad)])
    assert failed.exit_code == 1
    assert "line 4, email: Must be an e-mail address." in failed.output and "nothing was imported" in failed.output
    with app_org.db.read() as s:
        assert s.scalars(select(Person).where(Person.username == "newbie")).first() is None
    done = runner.invoke(args=["people", "import", str(good), "--as", "hr"])
    assert done.exit_code == 0 and "imported: 1 new, 1 updated" in done.output
    assert runner.invoke(args=["people", "import", str(good), "--as", "employee"]).exit_code == 1


# ------------------------------------------------------------------------------------------- the annual cycles


def _prepare(runtime: Runtime) -> int:
    """Make the window's officers interesting: a running case, the top pay point, LWOP, no commencement date."""
    running = start_case(runtime, {"employee": "employee", "agreement_start": "2026-01-15",
                                   "assessment_date": "2027-01-15"})
    with runtime.db.unit_of_work() as uow:
        s = uow.session
        s.scalars(select(Person).where(Person.username == "engineer")).one().pay_point = "SPPO1-3"
        supervisor = s.scalars(select(Person).where(Person.username == "supervisor")).one()
        s.add(Leave(person_id=supervisor.id, kind="lwop", start=date(2026, 5, 1), end=date(2026, 5, 10),
                    counts_as_service=False, recorded_at=CLOCK.now(), recorded_by="hr"))
        s.add(Person(username="nodate", name="No Date", email="n@x.example", classification="SPAO1",
                     pay_point="SPAO1-1"))
        uow.commit()
    return running


def test_d19_annual_cycles_summary_of_started_and_skipped(app_org: Runtime) -> None:
    running = _prepare(app_org)
    job_id = bulk.create_job(app_org.db, "hr", date(2026, 12, 1), date(2027, 1, 31))
    seen: list[tuple[int, int]] = []
    status = bulk.run_job(app_org, job_id, None, "hr", progress=lambda s: seen.append((s.done, s.total)))
    assert status.status == "finished" and status.total == 12 and status.done == 12
    assert seen[-1] == (12, 12) and [d for d, _ in seen] == sorted(d for d, _ in seen)

    started = {s["username"]: s for s in status.started}
    assert set(started) == {"supervisor"}
    # D19-9d: ten days of LWOP that do not count as service postpone the assessment date
    assert started["supervisor"]["assessment_date"] == "2027-01-25"
    assert started["supervisor"]["agreement_start"] == "2026-01-15"
    skipped = {s["username"]: s["reason"] for s in status.skipped}
    assert skipped["employee"] == f"already has a running pay progression case (#{running})"
    assert "top" in skipped["engineer"] and "SPPO1-3" in skipped["engineer"]  # D19-1: no next pay point
    assert "Determination 19, cl. 1" in skipped["clerk"] and "AO6" in skipped["clerk"]  # not covered
    assert "no commencement date" in skipped["nodate"]
    assert set(skipped) == {"employee", "engineer", "nodate", "admin", "ceo", "clerk", "delegate", "hr", "manager",
                            "ocpe", "owner"}

    cases = _cases(app_org)
    case = cases["supervisor"]
    assert case.status == "running" and case.started_by == "hr"
    assert case.data["assessment_date"] == "2027-01-25" and case.data["agreement_start"] == "2026-01-15"
    with app_org.db.read() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.instance_id == case.id)).all()
        summary = s.scalars(select(AuditEvent).where(AuditEvent.kind == "annual_cycles_run")).one()
    assert events[0].kind == "started" and events[0].actor == "hr"  # each start audited in its own case
    assert summary.detail["started"] == ["supervisor"] and summary.detail["job"] == job_id

    again = bulk.run_job(app_org, bulk.create_job(app_org.db, "hr", date(2026, 12, 1), date(2027, 1, 31)), None, "hr")
    assert again.started == []  # a second run starts nobody twice
    assert {s["username"]: s["reason"] for s in again.skipped}["supervisor"].startswith("already has a running")


def test_annual_cycles_from_the_last_case_not_the_commencement(app_org: Runtime) -> None:
    """The cycle after a finished case starts on that case's assessment date (which LWOP may have moved)."""
    first = start_case(app_org, {"employee": "employee", "agreement_start": "2025-07-01",
                                 "assessment_date": "2026-07-01"})
    app_org.cancel(_hr(app_org), first, "started by mistake")  # a cancelled case does not count
    done = start_case(app_org, {"employee": "employee", "agreement_start": "2025-08-01",
                                "assessment_date": "2026-08-01"})
    with app_org.db.unit_of_work() as uow:
        uow.session.get_one(ProcessInstance, done).status = "completed"
        uow.commit()
    with app_org.db.read() as s:
        cycles, skips = bulk.plan_cycles(s, date(2027, 7, 1), date(2027, 8, 31))
    mine = next(c for c in cycles if c.username == "employee")
    assert (mine.agreement_start, mine.assessment_date) == (date(2026, 8, 1), date(2027, 8, 1))
    assert f"case #{done}" in mine.basis
    with app_org.db.read() as s:
        _cycles, skips = bulk.plan_cycles(s, date(2026, 7, 15), date(2026, 8, 15))
    assert any(k.username == "employee" and f"#{done}" in k.reason for k in skips)


def _hr(runtime: Runtime) -> object:
    from tests.workflow.driver import Driver

    return Driver(runtime).user("hr")


def test_one_run_at_a_time_and_an_interrupted_run_gives_way(app_org: Runtime) -> None:
    first = bulk.create_job(app_org.db, "hr", date(2026, 12, 1), date(2026, 12, 31))
    with pytest.raises(Conflict):
        bulk.create_job(app_org.db, "admin", date(2026, 12, 1), date(2026, 12, 31))
    CLOCK.advance(bulk.STALE_AFTER + timedelta(seconds=1))  # its process died: nothing moved for ten minutes
    assert bulk.job_status(app_org.db, first).status == "failed"
    second = bulk.create_job(app_org.db, "admin", date(2026, 12, 1), date(2026, 12, 31))
    with app_org.db.read() as s:
        assert s.get_one(BulkJob, first).status == "failed" and s.get_one(BulkJob, second).status == "queued"


def test_annual_cycles_on_the_web_with_progress(client: FlaskClient, app: Flask, app_org: Runtime,
                                                auth: Auth) -> None:
    _prepare(app_org)
    auth.login("hr")
    form = client.get("/hr/annual").get_data(as_text=True)
    assert 'type="date" id="f-from"' in form and "<legend>" in form
    preview = client.post("/hr/annual", data=WINDOW).get_data(as_text=True)
    assert "Sam Okafor" in preview and "2027-01-25" in preview and "postponed 10 days" in preview
    assert "no commencement date" in preview and "already has a running" in preview
    assert len(_cases(app_org)) == 1  # the preview started nothing
    bad = client.post("/hr/annual", data={"from": "2027-01-31", "to": "2026-12-01"})
    assert bad.status_code == 422 and b'aria-invalid="true"' in bad.data

    started = client.post("/hr/annual/start", data=WINDOW)
    assert started.status_code == 302
    job_url = started.headers["Location"]
    wait_for_jobs(app)
    progress = client.get(f"{job_url}/progress").get_json()
    assert progress == {"id": progress["id"], "status": "finished", "total": 12, "done": 12, "started": 1,
                        "skipped": 11, "finished": True, "error": None}
    page = client.get(job_url).get_data(as_text=True)
    assert 'value="12"' in page and "Started (1)" in page and "Skipped (11)" in page
    assert "Determination 19, cl. 1" in page and "progress.js" not in page  # finished: nothing polls
    assert "supervisor" in _cases(app_org)


def test_progress_page_polls_with_script_and_refreshes_without(client: FlaskClient, app_org: Runtime,
                                                               auth: Auth) -> None:
    job_id = bulk.create_job(app_org.db, "hr", date(2026, 12, 1), date(2027, 1, 31))  # queued, not yet run
    auth.login("hr")
    page = client.get(f"/hr/annual/{job_id}").get_data(as_text=True)
    assert '<progress id="job-bar"' in page and 'role="status"' in page
    assert f'data-progress-url="/hr/annual/{job_id}/progress"' in page
    assert '<script src="/static/hr/progress.js" defer></script>' in page  # no inline script (the CSP forbids it)
    assert re.search(r'<noscript>\s*<meta http-equiv="refresh" content="3">', page)
    script = client.get("/static/hr/progress.js")
    assert script.status_code == 200 and b"fetch(" in script.data
    script.close()
    assert client.get("/hr/annual/999/progress").status_code == 404


def test_cli_start_cycles_with_a_progress_line_and_summary(app: Flask, app_org: Runtime) -> None:
    _prepare(app_org)
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["progression", "start-cycles", "--from", "2026-12-01", "--to", "2027-01-31",
                              "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would start supervisor: agreement 2026-01-15 to 2027-01-25" in dry.output
    assert len(_cases(app_org)) == 1
    result = runner.invoke(args=["progression", "start-cycles", "--from", "2026-12-01", "--to", "2027-01-31",
                                 "--as", "hr"])
    assert result.exit_code == 0, result.output
    assert "[12/12]" in result.output  # one progress line per officer (not a terminal)
    assert "started 1, skipped 11 (finished)" in result.output
    assert re.search(r"started  supervisor: case #\d+, assessment date 2027-01-25", result.output)
    assert "skipped  clerk: Determination 19, cl. 1" in result.output
    assert _cases(app_org)["supervisor"].started_by == "hr"
    wrong = runner.invoke(args=["progression", "start-cycles", "--from", "2027-01-31", "--to", "2026-12-01"])
    assert wrong.exit_code == 1 and "must not be before the start" in wrong.output


def test_d19_1_the_preview_counts_what_will_really_start_and_warns_of_overdue_invitations(
        app_org: Runtime, client: FlaskClient, auth: Auth) -> None:
    """Issue 19: "Start the year's cycles" previewed "Start 13 cases" and started 3, and the cases it started were
    already overdue with no warning. The preview now puts each cycle through the start check a real start runs, and
    flags an invitation due before today (cl. 3(2))."""
    with app_org.db.read() as s:
        planned, _ = bulk.plan_cycles(s, date(2026, 1, 1), date(2026, 4, 30))
        cycles, skips = bulk.preview_cycles(s, app_org.settings, date(2026, 1, 1), date(2026, 4, 30))
    assert {c.username for c in cycles} == {"employee", "engineer", "supervisor"}  # the classifications D19 covers
    assert len(planned) > len(cycles)
    clerk = next(k for k in skips if k.username == "clerk")
    assert "Determination 19" in clerk.reason or "D19" in clerk.reason or "cover" in clerk.reason, clerk.reason
    assert all(c.invite_overdue for c in cycles)  # assessed 15 January 2026: the invitation was due in November
    auth.login("hr")
    page = client.post("/hr/annual", data={"from": "2026-01-01", "to": "2026-04-30"}).get_data(as_text=True)
    assert "Start 3 cases" in page and "starts with it overdue" in page
    job = bulk.create_job(app_org.db, "hr", date(2026, 1, 1), date(2026, 4, 30))
    status = bulk.run_job(app_org, job, None, "hr")
    assert len(status.started) == 3  # what the preview said
