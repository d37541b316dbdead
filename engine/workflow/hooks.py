"""Process-specific code that runs inside the runtime's transaction: the kinds of hook, and the set a policy
package fills with its decorators and declares in its `ProcessPackage` (engine.workflow.registry).

The runtime stays generic: a process that needs more than its diagram (evidence kept outside task data,
a placement register kept in step, notices to people a task does not go to) registers hooks. Each hook runs in
the same transaction as the change, so it commits or rolls back with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.orm import Session

from engine.core.config import Settings
from engine.workflow.models import HumanTask, ProcessInstance

if TYPE_CHECKING:
    from engine.workflow.timeline import Mark

#: (session, instance, task, form data, actor) -> the form data to store (e.g. big text replaced by a reference)
OnComplete = Callable[[Session, ProcessInstance, HumanTask, dict[str, Any], str], dict[str, Any]]
#: (session, instance, task, settings) -> None, when a user task opens (e.g. tell someone it exists)
OnTaskOpened = Callable[[Session, ProcessInstance, HumanTask, Settings], None]
#: (session, instance, actor, settings) -> None, after every save of the case (its data snapshot is current)
AfterSave = Callable[[Session, ProcessInstance, str, Settings], None]
#: (session, user or None, actor, start data) -> the start data (may raise Invalid/Forbidden): who may start a case
#: with what, checked before the process's starter (e.g. appointments named at the start, pay_progression.services)
BeforeStart = Callable[[Session, Any, str, dict[str, Any]], dict[str, Any]]
#: (session, start data, settings) -> the checked and completed start data (raise Invalid naming the field): the
#: process's starter, after its before_start guards (e.g. pay_progression.start_checks.prepare_pay_progression)
Prepare = Callable[[Session, dict[str, Any], Settings], dict[str, Any]]
#: (session, instance id, data) -> data as people should see it (e.g. document references resolved)
Display = Callable[[Session, int, Any], Any]
#: (session, instance, the organisation's time zone) -> the policy's dated marks of the case for its timeline
#: (engine.workflow.timeline: an assessment date before and after it moved, a placement's end); never writes
Timeline = Callable[[Session, ProcessInstance, str], "Iterable[Mark]"]
_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass
class Hooks:
    """The hooks of one process key."""

    on_complete: list[OnComplete] = field(default_factory=list)
    on_task_opened: list[OnTaskOpened] = field(default_factory=list)
    after_save: list[AfterSave] = field(default_factory=list)
    display: list[Display] = field(default_factory=list)
    before_start: list[BeforeStart] = field(default_factory=list)
    prepare: list[Prepare] = field(default_factory=list)
    timeline: list[Timeline] = field(default_factory=list)


class HookSet:
    """A policy package's hooks, by process key, filled by its decorators (`@HOOKS.on_complete("secondment")`)
    and handed to the registry in the package's `ProcessPackage`."""

    def __init__(self) -> None:
        self._by_key: dict[str, Hooks] = {}

    def of(self, process_key: str) -> Hooks:
        """The hooks of one process key (empty when none)."""
        return self._by_key.setdefault(process_key, Hooks())

    def _register(self, process_key: str, kind: str) -> Callable[[_F], _F]:
        """A decorator adding its function to the process's `kind` hooks (once, however often it is imported)."""
        def register(fn: _F) -> _F:
            registered: list[Any] = getattr(self.of(process_key), kind)
            if fn not in registered:
                registered.append(fn)
            return fn
        return register

    def on_complete(self, process_key: str) -> Callable[[OnComplete], OnComplete]:
        """Decorator: run when a task of this process is completed, before the data reaches the workflow."""
        return self._register(process_key, "on_complete")

    def on_task_opened(self, process_key: str) -> Callable[[OnTaskOpened], OnTaskOpened]:
        """Decorator: run when a user task of this process opens (after its assignee is resolved)."""
        return self._register(process_key, "on_task_opened")

    def after_save(self, process_key: str) -> Callable[[AfterSave], AfterSave]:
        """Decorator: run after every save of a case of this process, in the same transaction."""
        return self._register(process_key, "after_save")

    def before_start(self, process_key: str) -> Callable[[BeforeStart], BeforeStart]:
        """Decorator: run when a case of this process is about to start, before its starter checks the data."""
        return self._register(process_key, "before_start")

    def prepare(self, process_key: str) -> Callable[[Prepare], Prepare]:
        """Decorator: the starter of a process: checks and completes its start data (one per process)."""
        return self._register(process_key, "prepare")

    def display(self, process_key: str) -> Callable[[Display], Display]:
        """Decorator: transform case data before it is shown (pages, API, instructions); never stored."""
        return self._register(process_key, "display")

    def timeline(self, process_key: str) -> Callable[[Timeline], Timeline]:
        """Decorator: the policy's dated marks of a case of this process, for its timeline (read only)."""
        return self._register(process_key, "timeline")
