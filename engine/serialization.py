"""Workflow (de)serialization that stores a reference to the spec version instead of the spec itself.

The embedded spec is half of every serialized document and doubles the cost of each save; the spec of
a deployed version never changes, so the instance row points at its definition and the parsed spec
comes from the cache.
"""

from __future__ import annotations

import json
import threading
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
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
        workflow = self.target_class(spec, subprocess_specs or {}, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


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
