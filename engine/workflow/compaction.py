"""Keep a case's live workflow state bounded by what is open, not by everything that ever happened (issue 21).

SpiffWorkflow keeps every task it ever ran in the workflow's task tree: a loop that goes round once a month for three
years leaves a chain of hundreds of finished tasks above the one that is open, each restored, walked and serialized
on every step. The history lives elsewhere already (the audit trail, the task rows); the tree only needs what the
library still reads. `compact` is called before each save and takes out of the tree:

- chains of finished tasks: a completed task with one child is spliced out (its child hangs from its parent), unless
  the library may still look at it (see `_pinned`);
- finished side branches hanging from the live part of the tree (a boundary event's cancelled catchers, an event
  gateway's losers, an earlier loop iteration's join twins), unless a join still waiting may count them;
- the subprocesses of call activities and embedded subprocesses that were removed that way (they have finished).

What the library reads, and so what stays (each rule is a test in tests/workflow/test_compaction.py):

- every unfinished task (and a task in ERROR), and the parent of each: a task's data is copied from its parent when
  it runs, and a join asks which input its waiting tasks came from (`task.parent.task_spec`);
- the tree's root, whose children are the started event subprocesses (serialization.wire_event_subprocesses);
- a task with more than one child that is kept, and a boundary event split with an unfinished child
  (BoundaryEventJoin finds its split with `find_ancestor` and reads its children);
- the parent of every kept join task (a parallel or inclusive gateway's twin cancelled while another waits);
- every finished branch holding a twin of a join that is still waiting: SpiffWorkflow counts that twin's input as
  arrived (ParallelGateway._check_threshold_unstructured) and merges its data when the join fires (an end join's
  twins, which are only merged, are folded into the newest: `_twins_that_count`);
- above each live task, the nearest task of each element that flows into a parallel gateway: a parallel gateway in
  a loop walks up the tree from its next instance to the first such input it meets (`remove_ancestor`), however far
  back that is;
- the workflow's last task (where the library starts looking for the next one).

What was taken out is returned as `Passed` records, which the runtime keeps as history rows (PassedElement) in the
step's transaction: with the tasks still in the tree they are the case's whole path, and its diagram still shows
every element that was ever completed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit, StartEventSplit, _EndJoin
from SpiffWorkflow.bpmn.specs.mixins.parallel_gateway import ParallelGateway
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.specs.Join import Join
from SpiffWorkflow.util.deep_merge import DeepMerge
from SpiffWorkflow.util.task import TaskState

_SPLITS = (BoundaryEventSplit, StartEventSplit)


@dataclass(frozen=True)
class Passed:
    """A finished task taken out of the tree: its element, final state and when it got there (library time)."""

    element: str
    state: str  # completed / cancelled
    changed_at: float


def task_count(workflow: BpmnWorkflow) -> int:
    """How many tasks the workflow holds, its subprocesses' included."""
    return len(workflow.tasks) + sum(len(sub.tasks) for sub in workflow.subprocesses.values())


def compact(workflow: BpmnWorkflow) -> list[Passed]:
    """Take what the library will never read again out of a workflow and its running subprocesses; returns the
    elements taken out, in the order they finished. A finished workflow is left whole (nothing runs in it)."""
    passed: list[Passed] = []
    _compact_one(workflow, workflow, passed)
    for key in list(workflow.subprocesses):
        sub = workflow.subprocesses.get(key)  # gone when its parent's subtree was taken out
        if sub is not None and not sub.completed:
            _compact_one(workflow, sub, passed)
    passed.sort(key=lambda p: p.changed_at)
    return passed


def _live(task: Any) -> bool:
    return not task.has_state(TaskState.FINISHED_MASK) or task.has_state(TaskState.ERROR)


def _children(task: Any) -> list[Any]:
    """The task's children that the workflow holds."""
    return [c for c in task.children if c is not None]


def _walk(root: Any) -> list[Any]:
    """Every task under `root`, parents before children (iterative: an old case's tree is deep)."""
    order, stack = [], [root]
    while stack:
        task = stack.pop()
        order.append(task)
        stack.extend(_children(task))
    return order


def _compact_one(top: BpmnWorkflow, workflow: Any, passed: list[Passed]) -> None:
    root = workflow.task_tree
    order = _walk(root)
    live_below: dict[UUID, bool] = {}
    for task in reversed(order):
        live_below[task.id] = _live(task) or any(live_below.get(c, False) for c in task._children)
    if not live_below[root.id]:
        return
    holders = _twins_that_count(order)
    gone: list[Any] = []
    for task in order:  # finished side branches hanging from the live part of the tree
        if task is root or not live_below[task.id] or _open_split(task):
            continue
        for child in _children(task):
            if not live_below[child.id] and not _holds_twin(child, holders):
                gone.extend(_walk(child))
                task._children.remove(child.id)
    for task in gone:
        _forget(top, workflow, task, passed)
    kept = [t for t in order if t.id in workflow.tasks]
    pinned = _pinned(root, kept)
    pinned |= _nearest_gateway_inputs(workflow, kept)
    if workflow.last_task is not None:
        pinned.add(workflow.last_task.id)
    for task in kept:
        if task.id not in pinned and task.parent is not None and _children(task):
            _splice(task)
            _forget(top, workflow, task, passed)


def _open_split(task: Any) -> bool:
    return isinstance(task.task_spec, _SPLITS) and any(_live(c) for c in _children(task))


def _twins_that_count(order: list[Any]) -> set[UUID]:
    """The finished twins of joins still waiting, which the join may count or merge data from when it fires.

    A process's end join (the EndJoin every branch that reaches an end event runs into) never counts its twins, but
    merges the data of each, oldest first, when the last branch ends: a placement's monthly branches leave one such
    twin a month. Those are folded into the newest, whose parent then holds their data merged in the same order
    (SpiffWorkflow's DeepMerge), so the others may go."""
    waiting = {t.task_spec.name for t in order if isinstance(t.task_spec, Join) and _live(t)}
    twins = [t for t in order if t.task_spec.name in waiting and not _live(t)]
    holders = {t.id for t in twins if not isinstance(t.task_spec, _EndJoin)}
    ends: dict[str, list[Any]] = {}
    for twin in twins:
        if isinstance(twin.task_spec, _EndJoin) and twin.parent is not None:
            ends.setdefault(twin.task_spec.name, []).append(twin)
    for same in ends.values():
        same.sort(key=lambda t: t.last_state_change)
        if len(same) > 1:
            merged: dict[str, Any] = {}
            for twin in same:
                DeepMerge.merge(merged, copy.deepcopy(twin.parent.data))
            same[-1].parent.data = merged
        holders.add(same[-1].id)
    return holders


def _holds_twin(branch: Any, holders: set[UUID]) -> bool:
    """Whether a finished branch holds a twin a waiting join may still count or merge."""
    return bool(holders) and any(t.id in holders for t in _walk(branch))


def _pinned(root: Any, tasks: Iterable[Any]) -> set[UUID]:
    """The tasks that stay: see the module's docstring."""
    pinned = {root.id}
    joins = []
    for task in tasks:
        if (_live(task) or len(task._children) != 1 or not task.has_state(TaskState.COMPLETED)
                or _open_split(task)):
            pinned.add(task.id)
        if _live(task) and task._parent is not None:
            pinned.add(task._parent)
        if isinstance(task.task_spec, Join):
            joins.append(task)
    changed = True
    while changed:  # a kept join keeps its parent, which may be a join itself
        changed = False
        for join in joins:
            if join.id in pinned and join._parent is not None and join._parent not in pinned:
                pinned.add(join._parent)
                changed = True
    return pinned


def _nearest_gateway_inputs(workflow: Any, tasks: Iterable[Any]) -> set[UUID]:
    """Above each live task, the nearest task of each element flowing into a parallel gateway."""
    inputs = _gateway_inputs(workflow.spec)
    found: set[UUID] = set()
    if not inputs:
        return found
    for task in tasks:
        parent = task.parent
        if not _live(task) or parent is None or _live(parent):
            continue  # walk once from the top of each run of live tasks
        seen: set[str] = set()
        while parent is not None and len(seen) < len(inputs):
            name = parent.task_spec.name
            if name in inputs and name not in seen:
                seen.add(name)
                found.add(parent.id)
            parent = parent.parent
    return found


def _gateway_inputs(spec: Any) -> frozenset[str]:
    """The elements flowing into a parallel gateway of a process spec (kept on the spec: it never changes)."""
    found: frozenset[str] | None = getattr(spec, "_ntpswf_gateway_inputs", None)
    if found is None:
        found = frozenset(i.name for ts in spec.task_specs.values() if isinstance(ts, ParallelGateway)
                          for i in ts.inputs)
        spec._ntpswf_gateway_inputs = found
    return found


def _splice(task: Any) -> None:
    """Hang the task's only child from the task's parent, in the task's place."""
    parent, child = task.parent, task.children[0]
    siblings = parent._children
    siblings[siblings.index(task.id)] = child.id
    child._parent = parent.id


def _forget(top: BpmnWorkflow, workflow: Any, task: Any, passed: list[Passed]) -> None:
    taken = [task]
    if task.id in top.subprocesses:  # a finished subprocess goes with its task, into the history as well
        taken += top.delete_subprocess(task)
    workflow.tasks.pop(task.id, None)
    if workflow.last_task is task:
        workflow.last_task = None
    for gone in taken:
        bpmn_id = getattr(gone.task_spec, "bpmn_id", None)
        if bpmn_id and gone.has_state(TaskState.FINISHED_MASK):
            state = "completed" if gone.has_state(TaskState.COMPLETED) else "cancelled"
            passed.append(Passed(str(bpmn_id), state, float(gone.last_state_change)))
