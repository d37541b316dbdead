"""The studio's scenario lab (issue 20): a draft of the D19 eligibility table with a changed rule is tried against the
process's scenarios beside what runs; the lab names the scenarios whose outcome changed and where, an unchanged
draft changes none, only process owners may try, a run is bounded, and a deployment despite changed scenarios needs
the owner's confirmation and reason, which are audited with it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.core.errors import Conflict, Forbidden, Invalid
from engine.core.models import AuditEvent
from engine.people.models import User
from engine.workflow import dmn_drafts, scenario_lab
from engine.workflow.models import ProcessDefinition
from engine.workflow.runtime import Runtime
from engine.workflow.scenario_format import SCENARIOS_DIR
from tests.workflow.driver import Driver

KEY = "pay_progression"
TABLE = "d19_eligibility.dmn"
RULE8_CELL = '<inputEntry id="d19_eligibility_rule8_in8"><text>&lt; facts["months_required"]</text>'
#: A few scenarios of the library: a 12-month cycle approved, and two refused starts the change does not touch.
PICKED = ("d19_4_approved_progression.yaml", "d19_1_top_pay_point_refused.yaml",
          "d19_1_other_classification_refused.yaml")


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A library of three of the real scenarios of pay_progression (the whole one is tried over HTTP)."""
    folder = tmp_path / "library" / "pay_progression" / KEY
    folder.mkdir(parents=True)
    for name in PICKED:
        shutil.copyfile(SCENARIOS_DIR / "pay_progression" / KEY / name, folder / name)
    return tmp_path / "library"


def _user(runtime: Runtime, username: str) -> User:
    return Driver(runtime).user(username)


def _draft_rule8(runtime: Runtime, owner: User, cell: str) -> None:
    """Save a draft of the table as the newest version has it, with rule 8's months cell replaced."""
    with runtime.db.read() as s:
        xml = str(dmn_drafts.definition(s, KEY).sources[TABLE])
    assert RULE8_CELL in xml
    _, problems = dmn_drafts.save_table(runtime.db, owner, KEY, TABLE,
                                        xml.replace(RULE8_CELL, RULE8_CELL.replace('facts["months_required"]', cell)))
    assert problems == []


def _versions(runtime: Runtime) -> list[int]:
    with runtime.db.read() as s:
        return list(s.scalars(select(ProcessDefinition.version).where(ProcessDefinition.key == KEY)
                              .order_by(ProcessDefinition.version)))


def test_d19_5_a_changed_eligibility_rule_shows_the_scenarios_whose_outcome_changed(org: Runtime,
                                                                                     library: Path) -> None:
    owner = _user(org, "owner")
    _draft_rule8(org, owner, "24")  # a 12-month cycle is no longer enough (cl. 5 asks 12)
    report = scenario_lab.try_draft(org.db, owner, KEY, org.settings, root=library)
    rows = {r["file"].rsplit("/", 1)[-1]: r for r in report.rows}
    assert set(rows) == set(PICKED) and report.job_id is not None
    approved = rows["d19_4_approved_progression.yaml"]
    assert approved["changed"] and approved["live"]["passed"] and not approved["draft"]["passed"]
    assert approved["live"]["outcome"] == "progressed" and approved["draft"]["outcome"] is None, approved
    fields = {c["field"] for c in approved["changes"]}
    assert {"passed", "status", "outcome", "path"} <= fields, fields
    assert "start (pay_progression)" in approved["where"]
    assert approved["clauses"][0] == "D19-4"
    assert [r["name"] for r in report.changed] == [approved["name"]] == [r["name"] for r in report.failing]
    assert not rows["d19_1_top_pay_point_refused.yaml"]["changed"]
    assert report.needs_confirmation
    kept = scenario_lab.report(org.db, owner, KEY, report.job_id)
    assert kept.rows == report.rows and kept.fingerprint == report.fingerprint
    again = scenario_lab.try_draft(org.db, owner, KEY, org.settings, root=library)  # the same drafts and day
    assert again.job_id == report.job_id


def test_an_unchanged_draft_changes_no_scenario(org: Runtime, library: Path) -> None:
    owner = _user(org, "owner")
    _draft_rule8(org, owner, 'facts["months_required"]')  # saved, but the same rule
    report = scenario_lab.try_draft(org.db, owner, KEY, org.settings, root=library)
    assert len(report.rows) == len(PICKED)
    assert report.changed == [] and report.failing == [] and report.not_run == []
    assert not report.needs_confirmation
    results, _ = scenario_lab.deploy_tables(org.db, owner, KEY, org.settings, root=library)  # no confirmation
    assert [r.key for r in results if r.key == KEY] == [KEY]
    with org.db.read() as s:
        assert s.scalars(select(AuditEvent).where(AuditEvent.kind == "deployed_despite_scenarios")).first() is None


def test_only_process_owners_try_a_draft(org: Runtime, library: Path) -> None:
    _draft_rule8(org, _user(org, "owner"), "24")
    for username in ("employee", "hr", "supervisor"):
        with pytest.raises(Forbidden):
            scenario_lab.try_draft(org.db, _user(org, username), KEY, org.settings, root=library)
    admin = _user(org, "admin")
    assert scenario_lab.try_draft(org.db, admin, KEY, org.settings, root=library).tried_by == "admin"


def test_a_spent_budget_runs_nothing_more_and_says_so(org: Runtime, library: Path) -> None:
    owner = _user(org, "owner")
    with pytest.raises(Invalid) as nothing:  # no draft saved: nothing to try
        scenario_lab.try_draft(org.db, owner, KEY, org.settings, root=library)
    assert nothing.value.problems[0].field == "draft"
    _draft_rule8(org, owner, "24")
    report = scenario_lab.try_draft(org.db, owner, KEY, org.settings, budget=0, root=library)
    assert len(report.not_run) == len(PICKED) and report.needs_confirmation
    assert all(r["live"] is None and r["draft"] is None for r in report.rows)
    whole = scenario_lab.try_draft(org.db, owner, KEY, org.settings, root=library)  # an incomplete try runs again
    assert whole.job_id != report.job_id and whole.not_run == []


def test_at_most_max_scenarios_run_and_the_rest_are_reported_not_run(org: Runtime, library: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    owner = _user(org, "owner")
    _draft_rule8(org, owner, "24")
    monkeypatch.setattr(scenario_lab, "MAX_SCENARIOS", 1)
    report = scenario_lab.try_draft(org.db, owner, KEY, org.settings, root=library)
    assert len(report.rows) == len(PICKED) and len(report.not_run) == len(PICKED) - 1
    assert report.rows[0]["live"] is not None and report.needs_confirmation


def test_deploying_despite_changed_scenarios_needs_a_confirmation_and_is_audited(org: Runtime,
                                                                                 library: Path) -> None:
    owner = _user(org, "owner")
    _draft_rule8(org, owner, "24")
    before = _versions(org)
    with pytest.raises(scenario_lab.ConfirmationNeeded) as refused:
        scenario_lab.deploy_tables(org.db, owner, KEY, org.settings, root=library)
    assert {p.field for p in refused.value.problems} == {"confirm", "reason"}
    with pytest.raises(scenario_lab.ConfirmationNeeded) as refused:
        scenario_lab.deploy_tables(org.db, owner, KEY, org.settings, confirm="yes", reason="  ", root=library)
    assert [p.field for p in refused.value.problems] == ["reason"]
    assert _versions(org) == before
    lab = refused.value.report
    results, used = scenario_lab.deploy_tables(org.db, owner, KEY, org.settings, confirm="yes",
                                               reason="Cl. 5 is to ask 24 months from next year.", root=library)
    assert used.job_id == lab.job_id  # the same drafts: the report is reused, not run again
    assert _versions(org) == [*before, before[-1] + 1] and any(r.created for r in results)
    with org.db.read() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.kind == "deployed_despite_scenarios")).one()
    assert event.actor == "owner" and event.detail["reason"] == "Cl. 5 is to ask 24 months from next year."
    assert event.detail["changed"] == event.detail["failed"] == [lab.changed[0]["name"]]
    assert event.detail["process"] == KEY and event.detail["lab"] == lab.job_id


def test_drafts_saved_after_the_try_are_not_deployed_on_its_confirmation(org: Runtime) -> None:
    owner = _user(org, "owner")
    _draft_rule8(org, owner, "24")
    with org.db.read() as s:
        tried = dmn_drafts.bundle_hash(dmn_drafts.draft_bundle(s, KEY))
    _draft_rule8(org, owner, "36")
    before = _versions(org)
    with pytest.raises(Conflict):
        dmn_drafts.deploy_tables(org.db, owner, KEY, expected_hash=tried, confirmed={"reason": "tried"})
    assert _versions(org) == before
