"""Issue 17: a policy is a package the registry loads; adding one needs no change to the core.

The toy package (tests/policies/toy/package.py) brings its own process, lane, start check and script helper.
Without it listed, its diagram does not deploy (unknown lane, unknown function); listed, the diagram deploys and
runs to the end, straight through and with a save/restore between every step; and its helper is offered to its
own process only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.core.errors import Invalid
from engine.workflow.bundles import read_bundle
from engine.workflow.definitions import deploy
from engine.workflow.registry import REGISTRY
from engine.workflow.runtime import Runtime
from tests.workflow.driver import Driver

HERE = Path(__file__).parent
POLICIES = "pay_progression,secondment,tests.policies.toy.package"


def _files() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in [HERE / "toy_leave.bpmn", *sorted((HERE / "forms").glob("*.json"))]}


def _deploy(runtime: Runtime, files: dict[str, bytes]) -> None:
    with runtime.db.unit_of_work() as uow:
        deploy(uow.session, read_bundle(files, None), "owner")
        uow.commit()


@pytest.fixture
def toy(org: Runtime) -> Iterator[Runtime]:
    REGISTRY.discard("toy")
    with pytest.raises(Invalid) as refused:  # not listed: its lane and its helper are unknown to the engine
        _deploy(org, _files())
    messages = " ".join(p.message for p in refused.value.problems)
    assert "Approver" in messages and "toil_return_date" in messages, messages
    runtime = Runtime(org.db, dataclasses.replace(org.settings, policies=POLICIES))
    assert "toy" in REGISTRY.packages
    _deploy(runtime, _files())
    yield runtime
    REGISTRY.discard("toy")


@pytest.mark.parametrize("restore", [False, True], ids=["straight", "save_restore"])
def test_arch_a_third_policy_runs_to_the_end_without_a_core_change(toy: Runtime, restore: bool) -> None:
    drive = Driver(toy, restore=restore)
    with pytest.raises(Invalid) as refused:  # the package's start check, naming the field
        drive.start("toy_leave", {"employee": "employee", "approver": "supervisor", "days": 9})
    assert [p.field for p in refused.value.problems] == ["days"]
    case = drive.start("toy_leave", {"employee": "employee", "approver": "supervisor", "days": 3})
    request = drive.open_task(case, "request")
    assert request.assignee is not None and request.assignee.username == "employee"  # the core's Employee lane
    drive.complete(case, "request", "employee", {"first_day": "2027-03-01"})
    decide = drive.open_task(case, "decide")
    assert decide.assignee is not None and decide.assignee.username == "supervisor"  # the package's Approver lane
    drive.complete(case, "decide", "supervisor", {"approve": True})
    row = drive.instance(case)
    assert row.status == "completed"
    assert row.data["back_on_date"] == "2027-03-04"  # the package's helper, run by the core's script engine
    assert row.subject_id is not None  # the case is about the employee the start data names


def test_arch_a_policys_helper_is_offered_to_its_own_processes_only(toy: Runtime) -> None:
    other = (HERE / "toy_leave.bpmn").read_text().replace('"toy_leave"', '"not_toy"').replace(
        'processRef="toy_leave"', 'processRef="not_toy"')
    files = {**_files(), "toy_leave.bpmn": other.encode()}
    with pytest.raises(Invalid) as refused:
        _deploy(toy, files)
    assert any("toil_return_date" in p.message for p in refused.value.problems), refused.value.problems
