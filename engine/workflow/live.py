"""Live cases: the workflows of the running cases this process saved last, kept in memory so that the next step of
the same case here skips restoring it from its stored JSON (the largest single cost of a step after the library's
own run).

A kept workflow is used only when the case's row holds, byte for byte, the text that was serialized from it, with
the same version of its process and the same lock_version: a step saved by another process or machine, a move to
another version (the text names no spec: a row moved by hand keeps its text), a rolled-back transaction or an
edit by hand all leave a different row, and the case is then restored from it as always. So what a step runs
on is, by construction, what the row says. The rules that keep it so:

- kept only after the transaction that wrote that text commits (a pending entry on the session; any rollback
  drops the session's pending entries), and only for a case still running;
- taken out when a step loads it (`take`), never shared: two steps of one case never hold the same object, and a
  step that fails leaves nothing behind (its workflow, changed halfway, is simply dropped);
- bounded: the least recently saved case goes first, past `size` cases (NTPSWF_LIVE_CASES; 0 keeps none).

Entries are per `Runtime`, so per database.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, NamedTuple

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from sqlalchemy import event
from sqlalchemy.orm import Session

from engine.workflow.models import ProcessInstance

__all__ = ["Live", "LiveCases"]

_PENDING = "ntpswf_live_cases"


class Live(NamedTuple):
    """A case's workflow as this process saved it: the row it wrote (its text, process version and lock_version),
    and the ids of the ready human tasks then."""

    serialized: str
    definition_id: int
    lock_version: int
    workflow: BpmnWorkflow
    ready: frozenset[str]


class LiveCases:
    """A bounded, thread-safe map of case id -> the workflow this process saved last for it."""

    def __init__(self, size: int) -> None:
        self.size = max(0, size)
        self._lock = threading.Lock()
        self._cases: OrderedDict[int, Live] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def take(self, row: ProcessInstance) -> Live | None:
        """The kept workflow of a case, taken out, if its row is exactly the one it was saved as; else None (the
        caller restores the case from the row)."""
        if not self.size:
            return None
        with self._lock:
            live = self._cases.pop(row.id, None)
            found = live is not None and (live.lock_version, live.definition_id, live.serialized) == (
                row.lock_version, row.definition_id, row.serialized)
            if found:
                self.hits += 1
            else:
                self.misses += 1
        return live if found else None

    def keep(self, session: Session, instance_id: int, live: Live) -> None:
        """Keep a case's workflow once the session's transaction commits (dropped if it rolls back)."""
        if self.size:
            session.info.setdefault(_PENDING, []).append((self, instance_id, live))

    def __len__(self) -> int:
        return len(self._cases)

    def _put(self, instance_id: int, live: Live) -> None:
        with self._lock:
            self._cases[instance_id] = live
            self._cases.move_to_end(instance_id)
            while len(self._cases) > self.size:
                self._cases.popitem(last=False)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    # Also called when a savepoint is released: should the outer transaction roll back after that, the row keeps
    # its older text and `take` never matches the entry.
    pending: list[tuple[LiveCases, int, Live]] = session.info.pop(_PENDING, [])
    for cases, instance_id, live in pending:
        cases._put(instance_id, live)


@event.listens_for(Session, "after_soft_rollback")
def _rolled_back(session: Session, _previous: Any) -> None:
    session.info.pop(_PENDING, None)
