"""Workflow (de)serialization that stores a reference to the spec version instead of the spec itself.

The embedded spec is half of every serialized document and doubles the cost of each save; the spec of
a deployed version never changes, so the instance row points at its definition and the parsed spec
comes from the cache.

One part of a BPMN spec is not fixed, though: SpiffWorkflow wires an event subprocess started by a message or
signal into the process spec when the event first starts it (`BpmnStartTask.trigger_wf` connects Start -> event
subprocess -> end), and the stock serializer saves that wiring with the embedded spec. A process with such event
subprocesses therefore gets a spec of its own on every restore, wired from its task tree (`own_spec`,
`wire_event_subprocesses`); that also keeps one case's wiring out of the cached spec every case shares.
"""

from __future__ import annotations

import copy
import json
import threading
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.event_definitions.simple import NoneEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG


class SpecReferenceConverter(BpmnWorkflowConverter):  # type: ignore[misc]
    """Leaves `spec` and `subprocess_specs` out; they are handed back in on restore."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct: dict[str, Any] = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct: dict[str, Any], spec: Any = None, subprocess_specs: Any = None) -> BpmnWorkflow:
        # Where BpmnWorkflowConverter.from_dict restores the spec saved with the workflow, wiring included, ours
        # takes the cached one: a copy of it when SpiffWorkflow rewires it at run time, rewired for this workflow.
        spec = own_spec(spec, self.registry)
        workflow = self.target_class(spec, subprocess_specs or {}, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        wire_event_subprocesses(workflow)
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _wired_at_run_time(spec: Any) -> list[str]:
    """The event subprocesses SpiffWorkflow wires into `spec` only when an event starts one (usually none)."""
    return list(getattr(getattr(spec, "start", None), "trigger_specs", None) or [])


def own_spec(spec: Any, registry: Any = None) -> Any:
    """`spec` itself, or, if SpiffWorkflow may rewire it at run time, a copy for one workflow.

    The copy is made as the stock serializer makes the spec it restores (convert, restore), so a workflow runs
    on what BpmnWorkflowConverter.from_dict would have given it. Only processes with event subprocesses started
    by a message or signal are copied; SpiffWorkflow never changes any other spec after parsing.
    """
    if not _wired_at_run_time(spec):
        return spec
    registry = registry if registry is not None else _serializer().registry
    # deepcopy: restoring uses the dict's lists as the task specs' `_inputs`/`_outputs` (the stock serializer's
    # dict is fresh from JSON), so without it wiring the copy would wire the cached spec as well.
    return registry.restore(copy.deepcopy(registry.convert(spec)))


def _wired_when_parsed(sp_spec: Any) -> bool:
    # BpmnStartTask.connect_or_add_trigger's test: an event subprocess with a none or timer start is wired at parse.
    return any(isinstance(ts.event_definition, NoneEventDefinition | TimerEventDefinition)
               for ts in sp_spec.bpmn_start_events)


def wire_event_subprocesses(workflow: BpmnWorkflow) -> None:
    """Wire the workflow's own spec as its saved spec was: with each event subprocess an event has started.

    An event subprocess has been started iff a task of it is a child of the root task, where
    `BpmnStartTask.trigger_wf` adds it after connecting Start -> event subprocess -> end; that connection is redone
    here, as `trigger_wf` does it. Wiring the cached spec got from a case that ran on it directly (a new case
    catching the event before its first save) is taken off, so only this workflow's own starts count.
    """
    spec = workflow.spec
    start = spec.start
    started = {child.task_spec.name for child in workflow.task_tree.children}
    for name in _wired_at_run_time(spec):
        task_spec = spec.task_specs.get(name)
        sp_spec = workflow.subprocess_specs.get(name)
        if task_spec is None or sp_spec is None or _wired_when_parsed(sp_spec):
            continue
        wired = start in task_spec.inputs
        if name in started and not wired:
            start.connect(task_spec)
            task_spec.connect(spec.end)
        elif wired and name not in started:
            _disconnect(start, task_spec)
            # A restored spec's `end` is not the EndJoin in its task_specs (SpiffWorkflow's converter leaves it).
            for end in (spec.end, spec.task_specs.get(spec.end.name)):
                if end is not None:
                    _disconnect(task_spec, end)


def _disconnect(source: Any, target: Any) -> None:
    if target.name in source._outputs:
        source._outputs.remove(target.name)
    if source.name in target._inputs:
        target._inputs.remove(source.name)


def _new_serializer() -> BpmnWorkflowSerializer:
    config = dict(SPIFF_CONFIG)
    config[BpmnWorkflow] = SpecReferenceConverter
    return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config))


# The serializer keeps a mode flag while encoding, so it is not thread safe: one per thread.
_local = threading.local()


def _serializer() -> BpmnWorkflowSerializer:
    s: BpmnWorkflowSerializer | None = getattr(_local, "serializer", None)
    if s is None:
        s = _local.serializer = _new_serializer()
    return s


def registry() -> Any:
    """This thread's serializer registry (for code that converts specs or task data itself, e.g. migration)."""
    return _serializer().registry


def dumps(workflow: BpmnWorkflow) -> str:
    """Serialize a workflow without its spec."""
    return str(_serializer().serialize_json(workflow))


def loads(text: str, spec: Any, subprocess_specs: dict[str, Any]) -> BpmnWorkflow:
    """Restore a workflow saved by `dumps`, attaching the given (cached) specs."""
    serializer = _serializer()
    dct = json.loads(text, cls=serializer.json_decoder_cls)
    serializer.migrate(dct)
    return serializer.from_dict(dct, spec=spec, subprocess_specs=subprocess_specs)
