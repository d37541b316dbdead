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
