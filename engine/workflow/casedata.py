"""A case's data as the engine keeps and shows it: the JSON snapshot of the workflow's data, changes applied by
a service, and the context task instructions are rendered with."""

from __future__ import annotations

import functools
import json
from datetime import date, datetime
from typing import Any

from jinja2 import TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    TimerEventDefinition,
)
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from engine.workflow.models import ProcessDefinition


def apply_data_changes(wf: BpmnWorkflow, changes: dict[str, Any]) -> None:
    """Write `changes` wherever unfinished tasks read data, and let waiting timers re-evaluate.

    A waiting timer's own data is re-merged from its parent, so the parent is updated too; dropping the
    stored `event_value` makes SpiffWorkflow evaluate the timer expression again on the next refresh.
    """
    wf.data.update(changes)
    for task in wf.get_tasks(state=TaskState.NOT_FINISHED_MASK):
        task.data.update(changes)
        if task.parent is not None:
            task.parent.data.update(changes)
        if task.state == TaskState.WAITING and isinstance(
                getattr(task.task_spec, "event_definition", None), TimerEventDefinition):
            task.internal_data.pop("event_value", None)
    if wf.last_task is not None:
        wf.last_task.data.update(changes)


def json_size(value: Any) -> int:
    """How many bytes `value` takes as JSON, UTF-8 (dates as text): the C encoder, one pass."""
    return len(json.dumps(value, default=str, separators=(",", ":"), ensure_ascii=False).encode())


def add_note(instructions: str | None, note: str) -> str:
    """A task's instructions (a template over the case data) with a paragraph that shows as written, never run."""
    literal = "{% raw %}" + note.replace("{%", "{ %").replace("%}", "% }") + "{% endraw %}"
    return (instructions or "") + "\n\n" + literal


def task_context(definition: ProcessDefinition, form: str | None, instructions: str | None,
                 data: dict[str, Any]) -> dict[str, Any]:
    """What a task's page reads of its own data: its form's fields and the names its instructions cite."""
    schema = definition.forms.get(form) if form else None
    keys = set((schema or {}).get("properties") or {}) if isinstance(schema, dict) else set()
    keys |= _template_names(instructions or "")
    context: dict[str, Any] = _jsonable({k: data[k] for k in sorted(keys) if k in data})
    return context


@functools.lru_cache(maxsize=512)
def _template_names(text: str) -> frozenset[str]:
    """The top-level names a task's instructions cite with {{ }} (none when they are not a valid template)."""
    if "{" not in text:
        return frozenset()
    try:
        return frozenset(meta.find_undeclared_variables(_TEMPLATES.parse(text)))
    except TemplateError:
        return frozenset()


_TEMPLATES = SandboxedEnvironment()


def case_data(wf: BpmnWorkflow, ready: list[Any] | None = None) -> dict[str, Any]:
    """The case's current data: what the last completed task saw, over the workflow's own data.

    `ready` are the workflow's ready human tasks, when the caller has them already."""
    data: dict[str, Any] = {k: v for k, v in wf.data.items() if k != "data_objects" or v}
    if wf.last_task is not None:
        data.update(wf.last_task.data)
    if ready is None:
        ready = wf.get_tasks(state=TaskState.READY, manual=True)
    if ready:
        data.update(ready[0].data)
    clean: dict[str, Any] = _jsonable(data)
    return clean


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def declared_outputs(spiff_task: Any) -> frozenset[str] | None:
    """The values a human task without a form declares it produces: its ioSpecification's data outputs, the data
    objects its output associations write, and (an instance of a multi-instance activity) the activity's output
    item. None: it names a `spiffworkflow:variableName`, under which the whole answer goes."""
    spec = spiff_task.task_spec
    if isinstance(getattr(spec, "variable", None), str) and spec.variable:
        return None
    names: set[str] = set()
    io = getattr(spec, "io_specification", None)
    if io is not None:
        names |= {str(d.bpmn_id) for d in io.data_outputs}
    names |= {str(d.bpmn_id) for d in getattr(spec, "data_output_associations", None) or []}
    parent = getattr(spiff_task, "parent", None)
    item = getattr(getattr(parent, "task_spec", None), "output_item", None)
    if item is not None and getattr(item, "bpmn_id", None):
        names.add(str(item.bpmn_id))
    return frozenset(names)
