"""How the runtime reads and writes a case's rows: prepared statements built once (a hot path), versioned updates
that refuse a lost update, and row locks that queue writers of one case."""

from __future__ import annotations

from typing import Any, TypeVar, cast

from sqlalchemy import bindparam, insert, inspect, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import instance_state, set_committed_value

from engine.core.db import connection_of
from engine.core.errors import Conflict
from engine.core.models import Base, table_of
from engine.workflow.compaction import Passed
from engine.workflow.definitions import SPECS
from engine.workflow.due import waiting_timer
from engine.workflow.models import HumanTask, PassedElement, ProcessDefinition, ProcessInstance, Timer

# ---------------------------------------------------------------------- helpers
#
# The hot path writes with single Core statements and records what it wrote as the objects' committed
# state, so the ORM has nothing left to flush: its unit of work costs more than the statements themselves.


def write_instance(session: Session, row: ProcessInstance, values: dict[str, Any]) -> None:
    """UPDATE a case row guarded by its `lock_version` (a concurrent writer -> Conflict, nothing written)."""
    version = row.lock_version
    result = connection_of(session).execute(
        _VERSIONED_UPDATE, {"row_id": row.id, "row_version": version, "lock_version": version + 1, **values})
    if result.rowcount != 1:
        raise Conflict("the case was changed by someone else at the same time; reload and try again")
    for key, value in values.items():
        set_committed_value(row, key, value)
    set_committed_value(row, "lock_version", version + 1)


def insert_case(session: Session, draft: ProcessInstance, values: dict[str, Any]) -> ProcessInstance:
    """INSERT a new case (drafted by start) with its first state; the persistent row that replaces the draft."""
    columns = {c.key: getattr(draft, c.key) for c in _INSTANCE.columns if c.key != "id"}
    columns.update(values, error=None, lock_version=1)
    row = as_loaded(session, ProcessInstance, {"id": insert_values(session, ProcessInstance, columns), **columns})
    set_committed_value(row, "definition", draft.definition)
    return row


def write_row(session: Session, obj: Any, **values: Any) -> None:
    """UPDATE one row by primary key with a Core statement and record the values as its committed state."""
    table = type(obj).__table__
    stmt = _UPDATES.get(table)
    if stmt is None:
        stmt = _UPDATES[table] = update(table).where(table.c.id == bindparam("row_id"))
    connection_of(session).execute(stmt, {"row_id": obj.id, **values})
    for key, value in values.items():
        set_committed_value(obj, key, value)


def insert_values(session: Session, model: type[Base], values: dict[str, Any]) -> int:
    """INSERT one row with a Core statement; its id. No object is built (a query of this session reads the row
    from the database): for a caller that does not need one, building it costs more than the statement."""
    table = table_of(model)
    stmt = _INSERTS.get(table)
    if stmt is None:
        stmt = _INSERTS[table] = insert(table).returning(table.c.id)
    ident: int = connection_of(session).execute(stmt, values).scalar_one()
    return ident


def as_loaded(session: Session, model: type[_T], values: dict[str, Any]) -> _T:
    """The session's object of a row whose every column (`values`, key included) was just read or written with a
    Core statement, as a query would have loaded it, for a fraction of what the ORM's loader costs. It registers
    the object as that loader does (one private call of SQLAlchemy, which pyproject.toml pins below 2.2).

    An object of that row already in the session takes the values (as `populate_existing` would). A column left out
    is refused: the object would read it as None, not load it."""
    known = _MAPPERS.get(model)
    if known is None:
        mapper = inspect(model)
        known = _MAPPERS[model] = (mapper, frozenset(c.key for c in mapper.columns))
    mapper, columns = known
    if not columns <= values.keys():
        raise ValueError(f"{model.__name__}: every column is needed; missing {sorted(columns - values.keys())}")
    key = mapper.identity_key_from_primary_key((values["id"],))
    existing = session.identity_map.get(key)
    if existing is not None:
        for name, value in values.items():
            set_committed_value(existing, name, value)
        return cast(_T, existing)
    obj = mapper.class_manager.new_instance()
    # As sqlalchemy.orm.loading._instance registers a row it loaded: the loaded values in the state's dict (no
    # change events, nothing to flush), its identity, its session; relationships stay unloaded, read on first use.
    state = instance_state(obj)
    state.dict.update(values)
    state.key = key
    state.identity_token = None
    state.session_id = session.hash_key
    session.identity_map._add_unpresent(state, key)
    return cast(_T, obj)


_MAPPERS: dict[type[Any], tuple[Any, frozenset[str]]] = {}


def task_and_case(session: Session, task_id: int) -> tuple[HumanTask, ProcessInstance, int] | None:
    """A task and its case, the case locked, with the case's lock_version as the statement's snapshot saw it (an
    unlocked second read of the row), which differs from the locked row's when a writer committed in between."""
    found = connection_of(session).execute(_TASK_AND_CASE, {"task_id": task_id}).first()
    if found is None:
        return None
    tasks, cases = len(_TASK_KEYS), len(_TASK_KEYS) + len(_INSTANCE_KEYS)
    task = as_loaded(session, HumanTask, dict(zip(_TASK_KEYS, found[:tasks], strict=True)))
    row = as_loaded(session, ProcessInstance, dict(zip(_INSTANCE_KEYS, found[tasks:cases], strict=True)))
    set_committed_value(task, "instance", row)
    return task, row, found[cases]


# Statements built once: their values come as parameters, so SQLAlchemy's compiled cache always hits.
_INSTANCE = table_of(ProcessInstance)
_VERSIONED_UPDATE = update(_INSTANCE).where(_INSTANCE.c.id == bindparam("row_id"),
                                            _INSTANCE.c.lock_version == bindparam("row_version"))
# A case holding its row lock (PostgreSQL; SQLite's write transaction is exclusive), and a task with its case so.
_LOCK_CASE = (select(ProcessInstance).where(ProcessInstance.id == bindparam("instance_id"))
              .with_for_update().execution_options(populate_existing=True))
_SNAPSHOT = _INSTANCE.alias("snapshot")
_TASKS = table_of(HumanTask)
_TASK_KEYS = tuple(c.key for c in _TASKS.columns)
_INSTANCE_KEYS = tuple(c.key for c in _INSTANCE.columns)
_TASK_AND_CASE = (select(_TASKS, _INSTANCE,
                         select(_SNAPSHOT.c.lock_version).where(_SNAPSHOT.c.id == _TASKS.c.instance_id)
                         .scalar_subquery())
                  .join(_INSTANCE, _INSTANCE.c.id == _TASKS.c.instance_id)
                  .where(_TASKS.c.id == bindparam("task_id"))
                  .with_for_update(of=_INSTANCE))
_DEFINITIONS = table_of(ProcessDefinition)
LATEST_ID = (select(_DEFINITIONS.c.id).where(_DEFINITIONS.c.key == bindparam("key"))
              .order_by(_DEFINITIONS.c.version.desc()).limit(1))
_TIMERS_OF_CASE = select(Timer).where(Timer.instance_id == bindparam("instance_id"))
_UPDATES: dict[Any, Any] = {}
_INSERTS: dict[Any, Any] = {}


def insert_passed(session: Session, instance_id: int, passed: list[Passed]) -> None:
    """Keep the elements compaction took out of a case's workflow as its history rows (one statement)."""
    if passed:
        connection_of(session).execute(insert(table_of(PassedElement)), [
            {"instance_id": instance_id, "element": p.element, "state": p.state, "changed_at": p.changed_at}
            for p in passed])


def lock_instance(session: Session, instance_id: int) -> ProcessInstance | None:
    """Load a case holding its row lock (PostgreSQL), so writers of one case queue instead of colliding.

    Two people completing the two branches of a parallel gateway then both succeed, one after the
    other, on the current state. SQLite's write transaction is already exclusive. The optimistic
    `lock_version` stays as the guard for any writer that does not take the lock.
    """
    return session.scalars(_LOCK_CASE, {"instance_id": instance_id}).first()


_T = TypeVar("_T", bound=Base)
DEFINITION_COLUMNS = tuple(_DEFINITIONS.columns)


_TIMER_SPECS: dict[int, bool] = {}


def uses_timers(row: ProcessInstance) -> bool:
    """Whether the case's process (or a subprocess of it) has any timer event; cached per parsed spec."""
    parsed = SPECS.get(row.definition)
    key = id(parsed.spec)
    if key not in _TIMER_SPECS:
        specs = [parsed.spec, *(s for s in parsed.subprocess_specs.values() if s is not None)]
        _TIMER_SPECS[key] = any(waiting_timer(getattr(ts, "event_definition", None)) is not None
                                for spec in specs for ts in spec.task_specs.values())
    return _TIMER_SPECS[key]


def timer_rows(session: Session, instance_id: int) -> list[Timer]:
    return list(session.scalars(_TIMERS_OF_CASE, {"instance_id": instance_id}))
