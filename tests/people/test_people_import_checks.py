"""The CSV people import checks values against the records (issue 19): it accepted classification XYZ9, pay point
SPPO1-9 where it is not one, organisation ZZZ and a start date in 2030. Each problem names its line and column, and
nothing is imported while any row has one."""

from __future__ import annotations

from sqlalchemy import select

from engine.core.models import AuditEvent
from engine.people.csv_import import import_people, plan_import
from engine.people.models import Organisation, Person
from engine.workflow.runtime import Runtime
from tests.web.api_helpers import row_counts

HEADER = "username,name,email,classification,pay_point,organisation,supervisor,manager,commenced_on"
GOOD = "newbie,Nadia Bell,nadia@ports.example,SPAO2,SPAO2-1,DPC,supervisor,,2026-02-02"


def _csv(*rows: str) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


def _usernames(runtime: Runtime) -> set[str]:
    with runtime.db.read() as s:
        return set(s.scalars(select(Person.username)))


def test_d19_1_an_unknown_classification_or_a_pay_point_not_of_it_is_an_error_naming_line_and_column(
        org: Runtime) -> None:
    text = _csv(GOOD,                                                                       # line 2: fine
                "typo,Tia Typo,t@x.example,XYZ9,,DPC,supervisor,,2025-01-01",              # line 3
                "wrongpoint,Will Point,w@x.example,SPPO1,SPPO1-9,DPC,supervisor,,2025-01-01",  # line 4
                "nopoints,Ned Points,n@x.example,AO6,SPPO1-2,DPC,supervisor,,2025-01-01")  # line 5: AO6 has none
    before = row_counts(org)
    plan = import_people(org.db, text, "hr")
    assert [(e.line, e.field) for e in plan.errors] == [(3, "classification"), (4, "pay_point"), (5, "pay_point")]
    assert "'XYZ9' is not a known classification" in plan.errors[0].message
    assert "SPAO1" in plan.errors[0].message and "AO6" in plan.errors[0].message  # the known ones are listed
    assert "'SPPO1-9' is not a pay point of SPPO1 (SPPO1-1, SPPO1-2, SPPO1-3)" in plan.errors[1].message
    assert "AO6 has no pay points" in plan.errors[2].message
    assert row_counts(org) == before and "newbie" not in _usernames(org)  # all or nothing


def test_known_classifications_are_those_with_pay_points_and_those_on_record(org: Runtime) -> None:
    text = _csv("p2,Pat Two,p2@x.example,sppo2,SPPO2-1,DPC,supervisor,,2025-01-01",  # pay points, nobody on record
                "c7,Cam Seven,c7@x.example,AO7,,DPC,supervisor,,2025-01-01")          # on record, no pay points
    with org.db.read() as s:
        plan = plan_import(s, text)
    assert plan.ok, plan.errors


def test_a_commencement_date_more_than_a_year_ahead_or_a_lifetime_back_is_an_error(org: Runtime) -> None:
    text = _csv(GOOD,
                "future,Fay Future,f@x.example,SPAO1,SPAO1-1,DPC,supervisor,,2030-01-06",  # line 3
                "ahead,Al Ahead,a@x.example,SPAO1,SPAO1-1,DPC,supervisor,,2027-03-01",     # line 4: within a year
                "old,Olga Old,o@x.example,SPAO1,SPAO1-1,DPC,supervisor,,1901-07-01")      # line 5
    plan = import_people(org.db, text, "hr")
    assert [(e.line, e.field) for e in plan.errors] == [(3, "commenced_on"), (5, "commenced_on")]
    assert plan.errors[0].message == ("2030-01-06 is more than 12 months from today: a commencement date is at most "
                                      "2027-03-02")
    assert "more than 70 years ago" in plan.errors[1].message
    assert "future" not in _usernames(org) and "ahead" not in _usernames(org)
    assert "line 3, commenced_on: 2030-01-06" in str(plan.errors[0])


def test_an_organisation_not_on_record_is_shown_in_the_plan_before_the_import_creates_it(org: Runtime) -> None:
    """The import has always created an organisation on its first mention (tests/people/test_people_import.py
    relies on it); the plan now names each new code and its first line, so a typo (ZZZ for DPC) is seen in the
    preview, and the import's audit event records what it created."""
    text = _csv(GOOD, "zed,Zed Zee,z@x.example,SPAO1,SPAO1-1,ZZZ,supervisor,,2025-01-01",
                "zed2,Zoe Zee,z2@x.example,SPAO1,SPAO1-1,ZZZ,supervisor,,2025-01-01")
    preview = import_people(org.db, text, "hr", dry_run=True)
    assert preview.ok and preview.new_organisations == {"ZZZ": 3}
    with org.db.read() as s:
        assert s.scalars(select(Organisation).where(Organisation.code == "ZZZ")).first() is None  # not yet
    done = import_people(org.db, text, "hr", expected=preview.fingerprint())
    assert done.ok
    with org.db.read() as s:
        assert s.scalars(select(Organisation.code).where(Organisation.code == "ZZZ")).one() == "ZZZ"
        event = s.scalars(select(AuditEvent).where(AuditEvent.kind == "people_imported")).one()
    assert event.detail["organisations_created"] == ["ZZZ"]
    with org.db.read() as s:
        again = plan_import(s, text)
    assert again.new_organisations == {}  # it is on record now
