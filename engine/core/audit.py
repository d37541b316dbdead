"""A case's history: audit events, written in one batch per transaction.

Events never need their ids while the transaction runs, so they are kept on the session and written
with one multi-row INSERT (Core, no RETURNING) instead of one ORM INSERT ... RETURNING each: SQLite
cannot batch an ORM insert whose integer key it must read back. They are written

- before any query of this session that reads `audit_event` (read-your-writes, like autoflush),
- when the session flushes, and
- before the session commits,

and forgotten when it rolls back, so the history is exactly as transactional as everything else.
"""

from __future__ import annotations

import weakref
from typing import Any, cast

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.util import find_tables

from engine.core.clock import CLOCK
from engine.core.db import connection_of
from engine.core.models import AuditEvent, table_of

_PENDING = "ntpswf_audit"
_TABLE = table_of(AuditEvent)
_INSERT = _TABLE.insert()  # built once: every step writes with it


def audit(session: Session, instance_id: int | None, actor: str, kind: str, **detail: Any) -> None:
    """Append an event to a case's history (written with the transaction)."""
    pending: list[dict[str, Any]] = session.info.setdefault(_PENDING, [])
    pending.append({"instance_id": instance_id, "at": CLOCK.now(), "actor": actor, "kind": kind,
                    "detail": detail})


def pending_events(session: Session) -> list[dict[str, Any]]:
    """Events recorded in this transaction and not yet written (oldest first)."""
    return list(session.info.get(_PENDING, ()))


def write_pending(session: Session) -> None:
    """Write the events recorded so far in this transaction (one statement)."""
    pending = session.info.pop(_PENDING, None)
    if pending:
        connection_of(session).execute(_INSERT, pending)


@event.listens_for(Session, "do_orm_execute")
def _before_query(state: ORMExecuteState) -> None:
    if state.session.info.get(_PENDING) and state.is_select and _reads_history(state.statement):
        write_pending(state.session)


def _reads_history(statement: Any) -> bool:
    """Whether a statement reads `audit_event`; remembered for the statements the hot paths build once."""
    known = _READS_HISTORY.get(statement)
    if known is None:
        known = _TABLE in find_tables(cast(ClauseElement, statement), include_joins=True, include_selects=True)
        _READS_HISTORY[statement] = known
    return known


_READS_HISTORY: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    write_pending(session)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    write_pending(session)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)
