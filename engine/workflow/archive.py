"""Archive finished cases: write each one's full record to a JSON-lines file and drop its serialized
workflow, which a finished case never needs again. The history (audit events, task rows, data
snapshot) stays in the database, so registers, reports and case pages keep working."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import IO

from sqlalchemy import select

from engine.core.audit import audit
from engine.core.clock import CLOCK
from engine.core.db import Database
from engine.workflow.models import ProcessInstance
from engine.workflow.queries import instance_dict

DEFAULT_RETENTION = timedelta(days=365)


def archive_finished(db: Database, older_than: timedelta, out: IO[str] | None, batch: int = 500) -> int:
    """Archive completed and cancelled cases that ended before now - older_than; returns how many."""
    cutoff = CLOCK.now() - older_than
    archived = 0
    while True:
        with db.unit_of_work() as uow:
            rows = list(uow.session.scalars(
                select(ProcessInstance).where(ProcessInstance.status.in_(("completed", "cancelled")),
                                              ProcessInstance.ended_at < cutoff, ProcessInstance.serialized != "")
                .order_by(ProcessInstance.id).limit(batch)))
            if not rows:
                return archived
            for row in rows:
                if out is not None:
                    out.write(json.dumps(instance_dict(uow.session, row), default=str) + "\n")
                row.serialized = ""
                audit(uow.session, row.id, "archive", "archived", retention_days=older_than.days)
            if out is not None:
                out.flush()  # the record is on disk before the transaction that drops the state commits
            uow.commit()
            archived += len(rows)


def archive_to_file(db: Database, older_than: timedelta, path: Path | None) -> int:
    """archive_finished, appending to `path` when given."""
    if path is None:
        return archive_finished(db, older_than, None)
    with path.open("a", encoding="utf-8") as out:
        return archive_finished(db, older_than, out)
