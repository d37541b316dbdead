"""The scenario library and its runner (issue 20).

Every file under scenarios/ runs straight through and with a save/restore before every step, against the project's
processes and forms: a broken scenario fails the build. Then the runner itself: a bad file is refused naming the
file and the step, a wrong expectation fails saying where, and the caller's clock never moves."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.core.clock import CLOCK
from engine.core.config import PROJECT_ROOT, Settings
from engine.workflow.scenario_format import (
    SCENARIOS_DIR,
    ScenarioFormatError,
    load_scenario,
    parse_scenario,
    parse_text,
    scenario_files,
)
from engine.workflow.scenarios import (
    MODES,
    Sources,
    compare,
    deploy_template,
    project_sources,
    run_scenario,
    run_scenarios,
)
from tests.conftest import SHARED, T0, require

FILES = scenario_files()
#: Clauses no process run can show, and why (each is proved by the tests named).
NO_SCENARIO: dict[str, str] = {}


@pytest.fixture(scope="module")
def sources() -> Sources:
    return project_sources(Settings())


@pytest.fixture(scope="module")
def template(sources: Sources, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's processes deployed once into a database each scenario's own is copied from."""
    path = tmp_path_factory.mktemp("scenarios") / "template.sqlite3"
    assert deploy_template(path, sources, Settings()) is None
    return path


def _scenario(**changes: Any) -> dict[str, Any]:
    """The approved progression scenario of the library, as a document, with some parts changed."""
    document = yaml.safe_load((SCENARIOS_DIR / "pay_progression/pay_progression/d19_4_approved_progression.yaml")
                              .read_text(encoding="utf-8"))
    document.update(changes)
    return dict(document)


# ------------------------------------------------------------------------------------------ the library


def test_the_library_has_scenarios_for_both_policies() -> None:
    folders = {p.relative_to(SCENARIOS_DIR).parts[:2] for p in FILES}
    assert {("pay_progression", "pay_progression"), ("pay_progression", "performance_agreement"),
            ("secondment", "secondment")} <= folders


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(SCENARIOS_DIR)) for p in FILES])
def test_scenario(path: Path, mode: str, sources: Sources, template: Path) -> None:
    scenario = load_scenario(path)
    assert path.parent.name == scenario.process, f"{path}: a scenario lives in its process's folder"
    result = run_scenario(scenario, sources, Settings(), restore=(mode == "save-restore"), template=template)
    assert result.passed, result.report()
    assert CLOCK.now() == T0


def test_every_clause_has_a_scenario_or_a_reason() -> None:
    require((SHARED / "REQUIREMENTS.md").exists(), "the shared requirements are not here")
    clauses = set(re.findall(r"^\| ((?:D19|MP)-[A-Za-z0-9.]+) \|", (SHARED / "REQUIREMENTS.md").read_text(),
                             re.MULTILINE))
    covered = {c for p in FILES for c in load_scenario(p).clauses}
    assert covered <= clauses, f"scenarios name clauses that do not exist: {sorted(covered - clauses)}"
    assert clauses - covered == set(NO_SCENARIO), f"clauses without a scenario: {sorted(clauses - covered)}"


# ------------------------------------------------------------------------------------------ the format


def test_a_step_of_no_known_kind_is_refused_naming_the_file_and_the_step() -> None:
    document = _scenario()
    document["steps"][2] = {"complete_task": {"task": "invite_submission", "as": "supervisor"}}
    with pytest.raises(ScenarioFormatError) as err:
        parse_scenario(document, "scenarios/x.yaml")
    assert err.value.file == "scenarios/x.yaml"
    assert err.value.where.startswith("steps[2]")
    assert str(err.value).startswith("scenarios/x.yaml: steps[2]")


def test_a_bad_field_of_a_step_is_named_with_its_task() -> None:
    document = _scenario()
    document["steps"][2]["complete"]["as"] = 7
    with pytest.raises(ScenarioFormatError) as err:
        parse_scenario(document, "x.yaml")
    assert err.value.where == "steps[2] (complete invite_submission) as"
    assert "7 is not of type 'string'" in err.value.message


def test_a_scenario_without_a_start_or_with_an_unknown_field_is_refused() -> None:
    document = _scenario()
    del document["start"]
    with pytest.raises(ScenarioFormatError, match="'start' is a required property"):
        parse_scenario(document, "x.yaml")
    with pytest.raises(ScenarioFormatError, match="unknown field"):
        parse_scenario(_scenario(expected={}), "x.yaml")


def test_text_that_is_not_yaml_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nclauses: [D19-4\nstart: {}\n", encoding="utf-8")
    with pytest.raises(ScenarioFormatError) as err:
        load_scenario(bad)
    assert err.value.file == str(bad) and err.value.where.startswith("line ")


def test_yaml_dates_and_json_read_the_same() -> None:
    text = yaml.safe_dump(_scenario())
    as_json = parse_text(json.dumps(_scenario(), default=str), "a.json")
    assert parse_text(text, "a.yaml").start == as_json.start
    assert as_json.start["at"] == "2026-03-02"


# ------------------------------------------------------------------------------------------ the runner


def test_a_wrong_expectation_fails_saying_where(sources: Sources, template: Path) -> None:
    document = _scenario()
    document["steps"][1] = {"expect_task": {"task": "invite_submission", "for": "manager", "due": "2026-05-01"}}
    result = run_scenario(parse_scenario(document, "x.yaml"), sources, template=template)
    assert not result.passed
    (failure,) = result.failures
    assert failure.where == "step 2 (expect_task invite_submission)"
    assert "expected invite_submission open for manager, it is for supervisor" in failure.message
    assert [s.ok for s in result.steps] == [True, True, False]  # it stops at the failing step
    assert result.status == "running"


def test_a_wrong_outcome_fails_naming_each_field(sources: Sources, template: Path) -> None:
    document = _scenario(outcome={"status": "completed", "data": {"outcome": "not_progressed"},
                                  "effective_date": "2026-07-01", "ended_at": "end_not_progressed"})
    result = run_scenario(parse_scenario(document, "x.yaml"), sources, template=template)
    (failure,) = result.failures
    assert failure.where == "outcome"
    assert "data.outcome: expected 'not_progressed', found 'progressed'" in failure.message
    assert "effective_date: expected 2026-07-01, found 2026-06-30" in failure.message
    assert "ended_at: expected end_not_progressed, found end_progressed" in failure.message
    assert (result.outcome, result.effective_date, result.ended_at) == ("progressed", "2026-06-30", "end_progressed")


def test_a_step_refused_unexpectedly_fails_with_the_rule(sources: Sources, template: Path) -> None:
    document = _scenario()
    document["steps"][2]["complete"]["as"] = "employee"  # the employee cannot invite herself
    result = run_scenario(parse_scenario(document, "x.yaml"), sources, template=template)
    (failure,) = result.failures
    assert failure.where == "step 3 (complete invite_submission)"
    assert failure.message.startswith("refused: Forbidden")


def test_an_expected_refusal_that_is_accepted_fails(sources: Sources, template: Path) -> None:
    document = _scenario()
    document["steps"][2]["complete"]["refused"] = {"error": "Forbidden"}
    result = run_scenario(parse_scenario(document, "x.yaml"), sources, template=template)
    assert result.failures[0].where == "step 3 (complete invite_submission)"
    assert "expected a refusal" in result.failures[0].message and "accepted" in result.failures[0].message


def test_a_draft_is_run_from_the_files_given(sources: Sources) -> None:
    """What the studio's lab does: the same scenario against other files shows where the draft differs."""
    files = dict(sources.files)
    bpmn = files["pay_progression.bpmn"]
    text = bpmn.decode() if isinstance(bpmn, bytes) else bpmn
    files["pay_progression.bpmn"] = text.replace('outcome = "progressed"', 'outcome = "progressed_in_draft"')
    assert files["pay_progression.bpmn"] != text
    (result,) = run_scenarios([load_scenario(SCENARIOS_DIR / "pay_progression/pay_progression/"
                                             "d19_4_approved_progression.yaml")], Sources(files, sources.forms_dir),
                              modes=["straight"])
    assert result.outcome == "progressed_in_draft" and result.mode == "straight"
    assert result.failures[0].where == "outcome"
    (live,) = run_scenarios([load_scenario(SCENARIOS_DIR / "pay_progression/pay_progression/"
                                           "d19_4_approved_progression.yaml")], sources, modes=["straight"])
    assert [(c.field, c.before, c.after, c.where) for c in compare([live], [result])] == [
        ("passed", True, False, "outcome"), ("outcome", "progressed", "progressed_in_draft", "")]


def test_a_draft_whose_script_fails_names_the_step_and_the_element(sources: Sources) -> None:
    files = dict(sources.files)
    bpmn = files["pay_progression.bpmn"]
    text = bpmn.decode() if isinstance(bpmn, bytes) else bpmn
    files["pay_progression.bpmn"] = text.replace('outcome = "progressed"', "outcome = progressed_undefined", 1)
    (result,) = run_scenarios([load_scenario(SCENARIOS_DIR / "pay_progression/pay_progression/"
                                             "d19_4_approved_progression.yaml")], Sources(files, sources.forms_dir),
                              modes=["save-restore"])
    (failure,) = result.failures
    assert failure.where == "step 9 (complete decide)"
    live = [replace(result, status="completed", path=[*result.path, "decide", "gw_decision"], failures=[])]
    path_change = compare(live, [result])[-1]
    assert (path_change.field, path_change.where) == ("path", "from element 12: decide became (the end)")
    assert "could not continue at record_progressed" in failure.message and "progressed_undefined" in failure.message
    assert result.status == "running" and result.path[-1] == "gw_recommendation"


def test_a_broken_draft_fails_the_setup_naming_the_file(sources: Sources) -> None:
    files = {**sources.files, "pay_progression.bpmn": "<definitions"}
    result = run_scenario(load_scenario(SCENARIOS_DIR / "pay_progression/pay_progression/"
                                        "d19_4_approved_progression.yaml"), Sources(files, sources.forms_dir))
    (failure,) = result.failures
    assert failure.where == "setup" and "pay_progression.bpmn" in failure.message


def test_the_callers_clock_never_moves(sources: Sources, template: Path) -> None:
    """The run moves its own clock to 2026-04-30 and beyond; the test's frozen clock, read meanwhile from
    another thread and after the run, stays at T0, whether the scenario passes or fails."""
    seen: list[datetime] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.append(CLOCK.now())

    document = _scenario()
    document["steps"].insert(1, {"at": "2026-05-01T00:00:00Z"})
    document["steps"].insert(2, {"fire_timers": True})
    document["steps"].insert(3, {"expect_task": {"task": "invite_submission", "escalated": True}})
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        passed = run_scenario(parse_scenario(document, "x.yaml"), sources, template=template)
        failed = run_scenario(parse_scenario(_scenario(outcome={"status": "cancelled"}), "x.yaml"), sources,
                              template=template)
    finally:
        stop.set()
        watcher.join()
    assert passed.passed, passed.report()
    assert passed.steps[2].summary == "clock at 2026-05-01T00:00:00+00:00"
    assert not failed.passed
    assert CLOCK.now() == T0 and set(seen) == {T0}
    assert datetime(2026, 3, 2, tzinfo=UTC) == T0


def test_a_refused_start_is_the_outcome(sources: Sources, template: Path) -> None:
    document = _scenario(steps=[], outcome={"status": "refused"})
    document["start"] = {**document["start"], "data": {**document["start"]["data"], "employee": "clerk"},
                         "refused": {"error": "Invalid", "field": "employee", "message": "cl. 1"}}
    result = run_scenario(parse_scenario(document, "x.yaml"), sources, template=template)
    assert result.passed, result.report()
    assert result.status == "refused" and result.steps[0].summary.startswith("refused as expected: Invalid")


def test_scenario_files_live_under_the_project() -> None:
    assert SCENARIOS_DIR == PROJECT_ROOT / "scenarios"
    assert all(p.suffix in (".yaml", ".yml", ".json") for p in FILES)


# ------------------------------------------------------------------------------------------ the command line


@pytest.fixture
def cli_app(tmp_path: Path) -> Any:
    import os

    from web import create_app

    os.environ.setdefault("NTPSWF_SECRET_KEY", "test-secret")
    application = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'app.sqlite3'}"), {"TESTING": True})
    yield application
    application.extensions["ntpswf"].db.dispose()


def test_the_command_line_runs_the_files_given(cli_app: Any) -> None:
    path = SCENARIOS_DIR / "pay_progression/pay_progression/d19_1_other_classification_refused.yaml"
    result = cli_app.test_cli_runner().invoke(args=["scenarios", "run", "--mode", "straight", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("PASS Starting a cycle for a classification")
    assert "1 passed, 0 failed" in result.output
    assert CLOCK.now() == T0


def test_the_command_line_names_a_bad_file_and_its_step(cli_app: Any, tmp_path: Path) -> None:
    document = _scenario()
    document["steps"][0] = {"wait": 3}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(document), encoding="utf-8")
    result = cli_app.test_cli_runner().invoke(args=["scenarios", "run", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}: steps[0]" in result.output


def test_the_command_line_fails_when_a_scenario_fails(cli_app: Any, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump(_scenario(steps=[], outcome={"status": "completed"})), encoding="utf-8")
    result = cli_app.test_cli_runner().invoke(args=["scenarios", "run", "--mode", "straight", "--json", str(wrong)])
    assert result.exit_code == 1
    (answer,) = json.loads(result.output)
    assert answer["passed"] is False and answer["failures"] == [
        {"where": "outcome", "message": "status: expected completed, found running"}]
