"""Issue 18: a call activity resolves against the processes already deployed.

Before, a caller was resolved only within its own upload: deploying the callee, then the caller in a second upload,
was refused "called process 'called' is not in this deployment". Now the newest deployed version of the callee is
taken in, and the caller's version keeps the callee's files: a later change to the callee does not change it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.core.errors import Invalid
from engine.workflow.bundles import read_bundle
from engine.workflow.definitions import deploy, latest_definition
from engine.workflow.runtime import Runtime
from tests.workflow.driver import Driver

FIXTURES = Path(__file__).parent / "fixtures_serialization"


def _deploy(runtime: Runtime, files: dict[str, bytes]) -> list[tuple[str, int, bool]]:
    with runtime.db.unit_of_work() as uow:
        results = deploy(uow.session, read_bundle(files, None), "owner")
        uow.commit()
    return [(r.key, r.version, r.created) for r in results]


def _file(name: str) -> dict[str, bytes]:
    return {name: (FIXTURES / name).read_bytes()}


@pytest.mark.parametrize("restore", [False, True], ids=["straight", "save_restore"])
def test_conf_a_caller_deployed_after_its_callee_runs_the_deployed_callee(org: Runtime, restore: bool) -> None:
    assert _deploy(org, _file("called.bpmn")) == [("called", 1, True)]
    assert ("caller", 1, True) in _deploy(org, _file("call_activity.bpmn"))
    with org.db.read() as s:
        caller = latest_definition(s, "caller")
        assert caller is not None and set(caller.sources) == {"call_activity.bpmn", "called.bpmn"}
    # the callee changes afterwards: the caller's version keeps what it was deployed with
    changed = (FIXTURES / "called.bpmn").read_text().replace("doubled = amount * 2", "doubled = amount * 3")
    assert _deploy(org, {"called.bpmn": changed.encode()}) == [("called", 2, True)]
    drive = Driver(org, restore=restore)
    case = drive.start("caller", {"amount": 5})
    drive.complete(case, "called_task", "hr", {})
    drive.complete(case, "after_call", "hr", {})
    row = drive.instance(case)
    assert row.status == "completed" and row.data["doubled"] == 10


def test_conf_a_call_activity_to_a_process_nobody_deployed_is_refused_naming_it(org: Runtime) -> None:
    with pytest.raises(Invalid) as refused:
        _deploy(org, _file("call_activity.bpmn"))
    assert [(p.element, p.message) for p in refused.value.problems] == [
        ("call", "calls the process 'called', which is neither in this upload nor deployed")]
