"""Determination 19's eligibility rules, read from the DMN decision tables deployed with the process.

The tables in `processes/pay_progression/*.dmn` are what a process owner reads and changes; the diagram runs them as
business rule tasks, and the starter runs the same tables before a case exists, so a refusal to start
names the rule (the table's `rule` output) and gives the table's own reason.  Tables run through the
restricted script environment, exactly as inside a workflow.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser

from engine.core.errors import Invalid, Problem
from engine.workflow.bundles import safe_xml
from engine.workflow.models import ProcessDefinition
from engine.workflow.scripts import ScriptError

#: D19-1: is the classification covered at all.
SCOPE = "d19_scope"
#: D19-1 (pay points), D19-5, D19-11, D19-12: may this employee be assessed in this cycle.
ELIGIBILITY = "d19_eligibility"


@dataclass(frozen=True)
class Verdict:
    """A decision table's answer: passed or not, the rule (clause id) that decided, and why."""

    passed: bool
    rule: str
    reason: str


class _Tables:
    """Parsed decision tables by (definition content hash, decision id): each version is parsed once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._engines: dict[tuple[str, str], Any] = {}

    def engine(self, definition: ProcessDefinition, decision_id: str) -> Any:
        key = (definition.content_hash, decision_id)
        with self._lock:
            cached = self._engines.get(key)
        if cached is not None:
            return cached
        parser = SpiffBpmnParser(validator=VALIDATOR)
        found = False
        for name, text in (definition.sources or {}).items():
            if name.lower().endswith(".dmn"):
                parser.add_dmn_xml(safe_xml(name, text), filename=name)
                found = found or decision_id in parser.dmn_parsers
        if not found:
            raise Invalid(f"the decision table '{decision_id}' is not deployed with {definition.key}", [Problem(
                f"the decision table '{decision_id}' is not deployed with this process; deploy its .dmn file "
                "together with the diagram", element=decision_id)])
        built = parser.get_engine(decision_id, None)
        with self._lock:
            self._engines[key] = built
        return built


TABLES = _Tables()


def decide(definition: ProcessDefinition, decision_id: str, data: dict[str, Any], script_engine: Any) -> dict[str, Any]:
    """Run a decision table over `data` (not modified) and return its outputs, as a business rule task would."""
    engine = TABLES.engine(definition, decision_id)
    # SpiffWorkflow's DMN engine reads only these attributes of a task.
    spec = SimpleNamespace(name=decision_id, bpmn_id=decision_id, bpmn_name=decision_id, lane=None)
    scratch = SimpleNamespace(data=copy.deepcopy(data), workflow=SimpleNamespace(script_engine=script_engine),
                              task_spec=spec)
    try:
        result: dict[str, Any] = engine.result(scratch)
    except (SpiffWorkflowException, ValidationException, ScriptError, KeyError, TypeError, ValueError) as exc:
        message = getattr(exc, "error_msg", None) or str(exc)
        raise Invalid(f"the decision table '{decision_id}' could not decide: {message}", [Problem(
            f"the decision table could not decide: {message}", element=decision_id)]) from exc
    return result


def verdict(output: dict[str, Any], key: str) -> Verdict:
    """Read `{key: {passed-flag, rule, reason}}` from a table's output; no matching row refuses."""
    part = output.get(key)
    if not isinstance(part, dict):
        return Verdict(False, "", "no rule of the decision table matched; a process owner must complete the table")
    flag = part.get("covered", part.get("eligible"))
    return Verdict(flag is True, str(part.get("rule") or ""), str(part.get("reason") or ""))
