"""Services around the D19 diagram: evidence documents, notices, the people record, the case record,
the administrator's settings and pay points."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from engine.core.clock import CLOCK
from engine.core.errors import Conflict, Forbidden, Invalid, NotFound
from engine.core.models import AuditEvent, Setting
from engine.people.models import PayPoint, Person
from engine.policies.pay_progression import services as d19
from engine.policies.pay_progression import settings as d19_settings
from engine.policies.pay_progression.record import case_record, record_csv
from engine.workflow.models import Document, Notification, ProcessInstance
from engine.workflow.runtime import Runtime
from tests.policies.pay_progression.test_pay_progression import (
    DECIDE_YES,
    INVITE,
    RECOMMEND_YES,
    REFUSE,
    REVIEW,
    START,
    SUBMIT,
)
from tests.workflow.driver import Driver


def _progressed(d: Driver) -> int:
    case = d.start("pay_progression", START)
    d.complete(case, "invite_submission", "supervisor", INVITE)
    d.complete(case, "make_submission", "employee", SUBMIT)
    d.complete(case, "recommend", "supervisor", RECOMMEND_YES)
    d.complete(case, "decide", "manager", DECIDE_YES)
    return case


# ------------------------------------------------------------------------------------------ evidence


def test_d19_6_evidence_is_kept_as_documents_and_read_back(org: Runtime) -> None:
    d = Driver(org)
    case = d.start("pay_progression", START)
    other = d.start("pay_progression", {**START, "employee": "engineer"})
    submission = {"submission": {**SUBMIT["submission"], "evidence_former_position": "Rebuilt the pilot roster."}}
    with org.db.unit_of_work() as uow:
        kept = d19.externalise_evidence(uow.session, case, "make_submission", "employee", submission)
        uow.commit()
    evidence = kept["submission"]["evidence"]["new_projects"]
    assert evidence.startswith("document:") and kept["submission"]["evidence_former_position"].startswith("document:")
    assert kept["submission"]["criteria"] == ["new_projects"]
    with org.db.read() as s:
        assert d19.resolve_documents(s, case, kept) == submission
        assert d19.resolve_documents(s, other, kept) == kept  # another case's documents are never read
        docs = s.scalars(select(Document).where(Document.instance_id == case)).all()
    assert sorted(doc.field for doc in docs) == ["submission.evidence.new_projects",
                                                 "submission.evidence_former_position"]
    assert {doc.created_by for doc in docs} == {"employee"}
    with org.db.unit_of_work() as uow:  # sent back unchanged: the same reference, no new document
        again = d19.externalise_evidence(uow.session, case, "make_submission", "employee", kept)
        forged = d19.externalise_evidence(uow.session, other, "make_submission", "engineer", kept)
        uow.commit()
    assert again == kept
    assert forged["submission"]["evidence"]["new_projects"] != evidence  # stored as text in its own case
    with org.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Document)) == 4
    assert d19.externalise_evidence(None, case, "recommend", "x", {"a": 1}) == {"a": 1}  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ notices


def test_d19_7_notices_are_delivered_once_to_the_lanes_people(org: Runtime) -> None:
    d = Driver(org)
    case = d.start("pay_progression", START)
    notices = [{"to": "Employee", "subject": "One", "body": "b", "clause": "D19-7"},
               {"to": "HR", "subject": "Two", "body": "b", "clause": None},
               {"to": "Nobody", "subject": "Three", "body": "b"}, "not a notice"]
    org.update_case_data("test", case, {"notices": notices}, "test notices")  # delivered as it is saved
    with org.db.unit_of_work() as uow:
        row = uow.session.get(ProcessInstance, case)
        assert row is not None
        assert d19.deliver_notices(uow.session, row) == 0
        uow.commit()
    with org.db.read() as s:
        sent = s.execute(select(Person.username, Notification.subject, Notification.body).join(
            Person, Person.id == Notification.person_id).where(Notification.instance_id == case)).all()
        audits = s.scalars(select(AuditEvent.detail).where(AuditEvent.instance_id == case,
                                                           AuditEvent.kind == "notice_sent")).all()
    assert ("employee", "One", "b\n\n(Determination 19, cl. 7)") in sent
    assert {u for u, subject, _ in sent if subject == "Two"} == {"hr", "admin"}
    assert [a["index"] for a in audits] == [0, 1, 2, 3] and audits[2]["recipients"] == []


# ------------------------------------------------------------------------------------------ people record


def test_d19_4_hr_applies_the_progression_to_the_people_record_once(org: Runtime) -> None:
    d = Driver(org)
    case = _progressed(d)
    with pytest.raises(Forbidden):
        d19.apply_progression(org, d.user("manager"), case)
    assert d19.apply_progression(org, d.user("hr"), case) == "SPAO1-2"
    with org.db.read() as s:
        assert s.scalars(select(Person.pay_point).where(Person.username == "employee")).one() == "SPAO1-2"
    with pytest.raises(Conflict):
        d19.apply_progression(org, d.user("hr"), case)
    refused = d.start("pay_progression", {**START, "employee": "engineer"})
    with pytest.raises(Conflict):
        d19.apply_progression(org, d.user("hr"), refused)
    with pytest.raises(NotFound):
        d19.apply_progression(org, d.user("hr"), 999)


# ------------------------------------------------------------------------------------------ the record


def test_the_record_says_who_decided_what_when_and_why(org: Runtime) -> None:
    d = Driver(org)
    case = d.start("pay_progression", START)
    d.complete(case, "invite_submission", "supervisor", INVITE)
    d.complete(case, "make_submission", "employee", SUBMIT)
    d.complete(case, "recommend", "supervisor", RECOMMEND_YES)
    d.complete(case, "decide", "manager", REFUSE)
    d.complete(case, "consider_review", "employee", REVIEW)
    CLOCK.freeze(datetime(2026, 7, 20, 1, 0, tzinfo=UTC))
    d.complete(case, "ceo_review", "ceo", {"review_decision": {
        "new_information_accepted": "accepted", "outcome": "progress", "reason": "=HYPERLINK(\"x\") The report."}})
    with org.db.read() as s:
        row = s.get(ProcessInstance, case)
        assert row is not None
        record = case_record(s, row)
    summary = dict(record.summary)
    assert summary["Employee"] == "Emily Wong (employee)"
    assert summary["Effective from"] == "2026-06-30" and summary["New pay point"] == "SPAO1-2"
    assert summary["Back-dated (cl. 9)"] == "yes, 20 days after the assessment date"
    assert summary["CEO review (cl. 9)"].startswith("received 2026-03-02, due 2026-03-30, decided 2026-07-20")
    decide = next(e for e in record.entries if e.what == "Decide")
    assert (decide.who, decide.who_name, decide.clause) == ("manager", "Morgan Lee (Manager, Port Operations)",
                                                            "D19-8")
    assert decide.decision == "Do not approve progression"
    assert "Written reason for the decision: Targets were met" in decide.reason
    assert "Feedback to the employee: Lead a project" in decide.reason
    review = next(e for e in record.entries if e.what == "Review the assessment outcome")
    assert review.decision == ("New information was offered and I accept it; The employee progresses (effective "
                               "from the original assessment date)")
    submission = next(e for e in record.entries if e.what == "Make your submission")
    assert ("Performance progression criteria you have achieved", "Successful undertaking of new projects.") in \
        submission.details
    assert record.evidence == [("submission.evidence.new_projects", SUBMIT["submission"]["evidence"]["new_projects"])]
    assert "Case ended" in [e.what for e in record.entries] and "Notice sent" in [e.what for e in record.entries]
    rows = list(csv.reader(io.StringIO(record_csv(record))))
    assert rows[0] == ["case", "at_utc", "who", "who_name", "what", "clause", "decision", "reason", "details"]
    review_row = next(r for r in rows if r[4] == "Review the assessment outcome")
    assert review_row[7].startswith("Reason: =HYPERLINK")  # a formula never starts a cell
    assert all(not cell.startswith(("=", "+", "@")) for r in rows[1:] for cell in r[6:])


def test_the_record_of_an_agreement_lists_its_targets(org: Runtime) -> None:
    from tests.policies.pay_progression.test_d19_agreement import AGREEMENT

    d = Driver(org)
    case = d.start("performance_agreement", {"employee": "employee", "agreement": AGREEMENT})
    d.complete(case, "record_agreement", "hr", {"agreement": AGREEMENT})
    with org.db.read() as s:
        row = s.get(ProcessInstance, case)
        assert row is not None
        summary = dict(case_record(s, row).summary)
    assert summary["Target 1"] == "Deliver the berth booking system"
    assert summary["Agreement (cl. 3(1))"].startswith("2025-07-01 to 2026-07-01; supervisor supervisor")


# ------------------------------------------------------------------------------------------ settings


def test_settings_have_the_texts_values_and_only_valid_changes_are_kept(org: Runtime) -> None:
    with org.db.read() as s:
        rules = d19_settings.load(s)
        listing = {item["key"]: item for item in d19_settings.listing(s)}
    assert (rules.invite_months_before, rules.agreement_setup_months, rules.cycle_months, rules.review_days) == (
        2, 2, 12, 28)
    assert rules.commencement_date == date(2011, 12, 9)
    assert listing["d19.review_days"]["clause"] == "D19-9a" and "four weeks" in listing["d19.review_days"]["source"]
    with org.db.unit_of_work() as uow, pytest.raises(Invalid) as err:
        d19_settings.save(uow.session, "admin", {"d19.review_days": "0", "d19.invite_months_before": "3",
                                                 "d19.commencement_date": "2011-13-01", "d19.nope": "1"})
    assert {p.field for p in err.value.problems} == {"d19.review_days", "d19.commencement_date", "d19.nope"}
    with org.db.read() as s:
        assert s.scalars(select(Setting)).all() == []
    with org.db.unit_of_work() as uow:
        assert d19_settings.save(uow.session, "admin", {"d19.review_days": "21", "d19.cycle_months": "12"}) == [
            "d19.review_days"]
        uow.commit()
    with org.db.read() as s:
        assert d19_settings.load(s).review_days == 21
        [event] = s.scalars(select(AuditEvent).where(AuditEvent.kind == "setting_changed")).all()
    assert event.actor == "admin" and event.detail == {"key": "d19.review_days", "before": "28", "after": "21",
                                                       "clause": "D19-9a"}


def test_a_corrupt_stored_setting_falls_back_to_the_default(org: Runtime) -> None:
    with org.db.unit_of_work() as uow:
        uow.session.add(Setting(key="d19.review_days", value="soon"))
        uow.commit()
    with org.db.read() as s:
        assert d19_settings.load(s).review_days == 28


# ------------------------------------------------------------------------------------------ pay points


def test_d19_1_pay_points_are_data_an_administrator_maintains(org: Runtime) -> None:
    with org.db.unit_of_work() as uow:
        new_id = d19_settings.save_pay_point(uow.session, "admin", {
            "classification": "spao1", "code": "spao1-4", "ordinal": "4", "annual_salary": "131,000"})
        uow.commit()
    d = Driver(org)
    with org.db.unit_of_work() as uow:
        uow.session.scalars(select(Person).where(Person.username == "employee")).one().pay_point = "SPAO1-3"
        uow.commit()
    case = d.start("pay_progression", START)  # no longer the top point
    assert d.instance(case).data["facts"]["has_next_pay_point"] is True
    with org.db.unit_of_work() as uow, pytest.raises(Conflict) as err:
        d19_settings.save_pay_point(uow.session, "admin", {"classification": "SPAO1", "code": "SPAO1-9",
                                                           "ordinal": "4"})
    assert err.value.problems[0].field == "ordinal"
    with org.db.unit_of_work() as uow, pytest.raises(Invalid) as bad:
        d19_settings.save_pay_point(uow.session, "admin", {"classification": "", "code": "x y", "ordinal": "0",
                                                           "annual_salary": "lots"})
    assert {p.field for p in bad.value.problems} == {"classification", "code", "ordinal", "annual_salary"}
    with org.db.unit_of_work() as uow:
        spao13 = uow.session.scalars(select(PayPoint.id).where(PayPoint.code == "SPAO1-3")).one()
        with pytest.raises(Conflict):  # someone is on it
            d19_settings.delete_pay_point(uow.session, "admin", spao13)
        d19_settings.delete_pay_point(uow.session, "admin", new_id)
        uow.commit()
    with org.db.read() as s:
        rows = d19_settings.pay_point_rows(s)
        kinds = s.scalars(select(AuditEvent.kind).where(AuditEvent.kind.like("pay_point%"))).all()
    assert [r["code"] for r in rows if r["classification"] == "SPAO1"] == ["SPAO1-1", "SPAO1-2", "SPAO1-3"]
    assert next(r for r in rows if r["code"] == "SPAO1-3")["people"] == 1
    assert kinds == ["pay_point_saved", "pay_point_deleted"]
