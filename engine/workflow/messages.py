"""Messages and signals from outside a case (API.md: `POST /api/v1/instances/{id}/messages`, `POST /api/v1/messages`).

A case waiting on a message or signal catch event (intermediate, boundary, an event-based gateway's branch, an
event subprocess's start) is sent that event by name, with a payload that goes into the case's data as SpiffWorkflow
puts it there (a spiff message's `messageVariable`, else the payload's keys). A message is correlated by the
payload: the definition's correlation properties are computed from it, so a case that already holds other values
for them does not catch it. A process whose start event is a message starts when that message is sent to no case
in particular. The payload is checked like form data (a JSON object, within the task data limit, free text cleaned).
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow

from engine.core.errors import Invalid, NotFound, Problem
from engine.core.text import strip_unsafe_values

#: The event definitions a message sent from outside may name.
EXTERNAL = (MessageEventDefinition, SignalEventDefinition)
#: The longest name a message may have (BPMN names; a longer one is a mistake, not a message).
MAX_NAME = 255


def check_message(name: Any, payload: Any) -> tuple[str, dict[str, Any]]:
    """The name and payload as sent, checked: a non-empty name, an object payload (free text cleaned)."""
    problems = []
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        problems.append(Problem(f"must be the name of a message or signal (1 to {MAX_NAME} characters)",
                                field="name"))
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        problems.append(Problem("must be an object", field="data"))
    if problems:
        raise Invalid("the message cannot be sent", problems)
    return str(name).strip(), strip_unsafe_values(dict(payload))


def _definitions(event_definition: Any) -> list[Any]:
    if isinstance(event_definition, MultipleEventDefinition):  # an event-based gateway, a multiple event
        return [d for inner in event_definition.event_definitions for d in _definitions(inner)]
    return [event_definition]


def waiting_for(workflow: BpmnWorkflow, name: str) -> Any | None:
    """The definition of a message or signal named `name` that the case waits for, or None."""
    for task in list(workflow.event_manager.tasks.values()):
        for definition in _definitions(getattr(task.task_spec, "event_definition", None)):
            if isinstance(definition, EXTERNAL) and definition.name == name:
                return definition
    return None


def waiting_names(workflow: BpmnWorkflow) -> list[str]:
    """The names of the messages and signals the case waits for (to say so when another is sent)."""
    names = {d.name for task in list(workflow.event_manager.tasks.values())
             for d in _definitions(getattr(task.task_spec, "event_definition", None)) if isinstance(d, EXTERNAL)}
    return sorted(names)


def deliver(workflow: BpmnWorkflow, definition: Any, payload: dict[str, Any]) -> int:
    """Send the event to the case's waiting tasks (correlated by the payload); how many caught it."""
    correlations: dict[str, Any] = {}
    if isinstance(definition, MessageEventDefinition) and definition.correlation_properties:
        correlations = definition.calculate_correlations(workflow.script_engine, definition.correlation_properties,
                                                         payload)
    event = BpmnEvent(definition, payload=payload, correlations=correlations)
    caught: int = workflow.event_manager.catch(event, internal=False)
    return caught


def message_start(spec: Any, name: str) -> Any | None:
    """The definition of the process's message start event named `name` (its top level only), or None."""
    for task_spec in spec.task_specs.values():
        if isinstance(task_spec, StartEvent):
            for definition in _definitions(getattr(task_spec, "event_definition", None)):
                if isinstance(definition, MessageEventDefinition) and definition.name == name:
                    return definition
    return None


def not_waiting(name: str, workflow: BpmnWorkflow) -> NotFound:
    """The 404 for a message the case does not wait for, saying what it does wait for."""
    waiting = waiting_names(workflow)
    said = f"; it waits for: {', '.join(waiting)}" if waiting else "; it waits for no message or signal"
    return NotFound(f"the case waits for no message or signal named {name!r}{said}",
                    [Problem(f"the case waits for no message or signal named {name!r}{said}", field="name")])
