"""Issue 18: every kind of task SpiffWorkflow opens for people gets the same treatment.

An untyped `bpmn:task` runs in SpiffWorkflow as a manual task. Before, the product opened it for people but never
stored its form (only user and manual tasks were checked at deploy): the submitted fields were dropped, completion
answered 200, and the gateway after it took the default path as if nothing had been entered.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.core.errors import Invalid
from engine.workflow.bundles import read_bundle
from engine.workflow.definitions import deploy
from engine.workflow.runtime import Runtime
from tests.workflow.driver import Driver

MODELS = Path(__file__).parent / "task_models"


def _deploy(runtime: Runtime, *names: str) -> None:
    with runtime.db.unit_of_work() as uow:
        deploy(uow.session, read_bundle({n: (MODELS / n).read_bytes() for n in names}, None), "test")
        uow.commit()


@pytest.mark.parametrize("restore", [False, True], ids=["straight", "save_restore"])
def test_conf_an_untyped_task_keeps_its_form_data(org: Runtime, restore: bool) -> None:
    _deploy(org, "untyped_task.bpmn", "how_many.json")
    drive = Driver(org, restore=restore)
    case = drive.start("untyped_task", {})
    task = drive.open_task(case, "u_ask")
    assert task.form == "how_many.json" and task.assigned_group == "hr"  # its lane resolved like a user task's
    with pytest.raises(Invalid) as refused:  # its form is checked
        drive.complete(case, "u_ask", "hr", {"count": "lots"})
    assert [p.field for p in refused.value.problems] == ["count"]
    drive.complete(case, "u_ask", "hr", {"count": 12, "smuggled": True})
    row = drive.instance(case)
    assert row.status == "completed"
    assert row.data["count"] == 12 and row.data["path"] == "many"  # the gateway read the submitted value
    assert "smuggled" not in row.data  # only the form's fields are kept


def test_conf_an_untyped_task_whose_form_is_missing_is_refused_at_deploy(org: Runtime) -> None:
    with pytest.raises(Invalid) as refused:
        _deploy(org, "untyped_task.bpmn")
    assert [(p.element, "how_many.json" in p.message) for p in refused.value.problems] == [("u_ask", True)]


def test_conf_a_service_task_with_an_operator_is_refused_at_deploy(org: Runtime) -> None:
    """Before, it deployed and every start answered 500 (the library's NameError: no connector to call)."""
    with pytest.raises(Invalid) as refused:
        _deploy(org, "service_task.bpmn")
    [problem] = refused.value.problems
    assert problem.element == "s_call" and "http/GetRequest" in problem.message and "connector" in problem.message


def test_conf_a_library_failure_at_run_time_is_a_refusal_naming_the_element(org: Runtime) -> None:
    """A version stored before a deploy-time check existed is loaded without that check: its service task then
    fails inside the library (a NameError: no connector), which is a 422 naming the element, not a 500, and no case
    is started."""
    from sqlalchemy import func, select

    from engine.core.clock import CLOCK
    from engine.workflow.models import ProcessDefinition, ProcessInstance

    with org.db.unit_of_work() as uow:  # as the deploy of an earlier release stored it
        uow.session.add(ProcessDefinition(
            key="service_call", version=1, name="Calls a connector", forms={}, content_hash="stored-before",
            sources={"service_task.bpmn": (MODELS / "service_task.bpmn").read_text()}, executable=True,
            deployed_at=CLOCK.now(), deployed_by="an earlier release"))
        uow.commit()
    with pytest.raises(Invalid) as refused:
        org.start(Driver(org).user("hr"), "service_call", {})
    assert [p.element for p in refused.value.problems] == ["s_call"]
    with org.db.read() as s:
        assert s.scalar(select(func.count()).select_from(ProcessInstance)) == 0


@pytest.mark.parametrize("restore", [False, True], ids=["straight", "save_restore"])
def test_conf_a_user_tasks_variable_name_keeps_its_form_data_under_that_name(org: Runtime, restore: bool) -> None:
    """`spiffworkflow:variableName` was accepted and ignored (the fields landed at the top level); SpiffWorkflow
    puts them under the name. `spiffworkflow:category` on a data object (which SpiffWorkflow reads) deploys."""
    _deploy(org, "named_form.bpmn", "how_many.json")
    drive = Driver(org, restore=restore)
    case = drive.start("named_form", {})
    drive.complete(case, "n_ask", "hr", {"count": 4})
    row = drive.instance(case)
    assert row.status == "completed" and row.data["answer"] == {"count": 4} and row.data["doubled"] == 8
    assert "count" not in row.data


@pytest.mark.parametrize("restore", [False, True], ids=["straight", "save_restore"])
def test_conf_a_task_without_a_form_takes_exactly_the_values_it_declares(org: Runtime, restore: bool) -> None:
    """Before, a human task without a form kept none of the data it was completed with (200, then the script after
    it failed on the missing value); now it keeps its ioSpecification outputs and refuses anything else by name."""
    _deploy(org, "no_form.bpmn")
    drive = Driver(org, restore=restore)
    case = drive.start("no_form", {})
    with pytest.raises(Invalid) as refused:
        drive.complete(case, "nf_ask", "hr", {"total": 21, "outcome": "approved"})
    assert [p.field for p in refused.value.problems] == ["outcome"] and "total" in refused.value.problems[0].message
    drive.complete(case, "nf_ask", "hr", {"total": 21})
    row = drive.instance(case)
    assert row.status == "completed" and row.data["doubled"] == 42
