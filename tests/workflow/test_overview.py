"""Where the cases of a process stand (issue 19): counts of cases and per element, read from the task and timer
rows, for the process's owners only."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from engine.core.errors import Forbidden, NotFound
from engine.workflow.access import may_oversee_process
from engine.workflow.models import ProcessInstance
from engine.workflow.overview import Overview, process_overview
from engine.workflow.runtime import Runtime
from tests.workflow.driver import Driver

START = {"employee": "employee", "agreement_start": "2025-06-30", "assessment_date": "2026-06-30"}
INVITE = {"invitation": {"message": "Please submit by Friday, Quokka."}}
DECLINE = {"submission": {"participate": "decline", "decline_reason": "Moving interstate with the zebra"}}


def three_cases(runtime: Runtime) -> tuple[int, int, int]:
    """One case at the invitation, one at the submission (its window's timer waiting), one declined (ended)."""
    drive = Driver(runtime)
    declined = drive.start("pay_progression", START)
    drive.complete(declined, "invite_submission", "supervisor", INVITE)
    drive.complete(declined, "make_submission", "employee", DECLINE)
    at_submission = drive.start("pay_progression", {**START, "employee": "engineer"})
    drive.complete(at_submission, "invite_submission", "supervisor", INVITE)
    at_invite = drive.start("pay_progression", START)  # one cycle at a time: the declined one has ended
    return at_invite, at_submission, declined


def _overview(runtime: Runtime, username: str, version: int | None = None) -> Overview:
    user = Driver(runtime).user(username)
    with runtime.db.read() as s:
        return process_overview(s, user, "pay_progression", version)


def test_mp_overview_counts_cases_and_elements_after_a_few_steps(org: Runtime) -> None:
    three_cases_ids = three_cases(org)
    view = _overview(org, "owner")
    assert view.cases == {"total": 3, "running": 2, "open": 2, "timer": 0, "elsewhere": 0, "completed": 1,
                          "cancelled": 0, "error": 0}
    counts = view.counts()
    assert counts["invite_submission"] == {"open": 1, "waiting": 0, "completed": 2}
    assert counts["make_submission"] == {"open": 1, "waiting": 0, "completed": 1}
    assert counts["submission_window_closes"] == {"open": 0, "waiting": 1, "completed": 0}
    names = {e.element: e.name for e in view.elements}
    assert names["make_submission"] != "make_submission"  # the diagram's name for it, not its id
    assert view.version is None and view.diagram_version == 1 and 'id="pay_progression"' in view.xml
    assert view.versions == [{"version": 1, "cases": 3, "running": 2}]
    at_invite, at_submission, _declined = three_cases_ids
    assert [(c["id"], c["at"]) for c in view.running] == [
        (at_invite, [names["invite_submission"]]),
        (at_submission, [names["make_submission"], names["submission_window_closes"] + " (timer)"])]
    one = _overview(org, "admin", version=1)
    assert one.cases == view.cases and one.counts() == counts


def test_mp_overview_reads_rows_not_workflows(org: Runtime) -> None:
    """No case is restored: the counts come even when a case's stored workflow cannot be read."""
    three_cases(org)
    org.db.run(lambda s: s.execute(update(ProcessInstance).values(serialized="not a workflow")))
    assert _overview(org, "owner").cases["total"] == 3


def test_mp_only_owners_and_admins_oversee_a_process(org: Runtime) -> None:
    three_cases(org)
    for username in ("hr", "employee", "supervisor", "ocpe"):
        user = Driver(org).user(username)
        assert not may_oversee_process(user, "pay_progression")
        with org.db.read() as s, pytest.raises(Forbidden):
            process_overview(s, user, "pay_progression")
    assert may_oversee_process(Driver(org).user("owner"), "pay_progression")
    with pytest.raises(NotFound):
        _overview(org, "owner", version=99)
    owner = Driver(org).user("owner")
    with org.db.read() as s, pytest.raises(NotFound):
        process_overview(s, owner, "no_such_process")
