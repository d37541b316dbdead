"""Running cases follow the authority rules: CEO tasks go to the employee's own CEO's office, and tasks that fell to
HR because nobody was on record wait for an appointment instead

Before, the CEO lane was one group of every organisation's head and every delegate (`ceo`), and a lane that resolved
to nobody went to HR (`hr`). Open tasks are moved: `ceo` -> `ceo:<the subject's organisation id>`, and a task of a
person lane (not HR, not lane-less) held by the `hr` group -> `appointment:<organisation id>`. Finished tasks keep
what they were. Downgrading puts the old group names back.

Revision ID: 0011_ceo_groups
Revises: 0009_task_reminder
Create Date: 2026-12-03 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_ceo_groups"
down_revision = "0009_task_reminder"
branch_labels = None
depends_on = None

_TASK = sa.table("human_task", sa.column("id", sa.Integer), sa.column("instance_id", sa.Integer),
                 sa.column("lane", sa.String), sa.column("assigned_group", sa.String), sa.column("state", sa.String))
_CASE = sa.table("process_instance", sa.column("id", sa.Integer), sa.column("subject_id", sa.Integer))
_PERSON = sa.table("person", sa.column("id", sa.Integer), sa.column("organisation_id", sa.Integer))


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_TASK.c.id, _TASK.c.lane, _TASK.c.assigned_group, _PERSON.c.organisation_id)
        .select_from(_TASK.join(_CASE, _CASE.c.id == _TASK.c.instance_id)
                     .outerjoin(_PERSON, _PERSON.c.id == _CASE.c.subject_id))
        .where(_TASK.c.state == "open", sa.or_(_TASK.c.assigned_group == "ceo", sa.and_(
            _TASK.c.assigned_group == "hr", _TASK.c.lane.is_not(None), _TASK.c.lane != "HR")))).all()
    for ident, _lane, group, organisation in rows:
        if group == "ceo" and organisation is not None:
            new = f"ceo:{organisation}"
        else:
            new = f"appointment:{organisation}" if organisation is not None else "appointment"
        bind.execute(sa.update(_TASK).where(_TASK.c.id == ident).values(assigned_group=new))


def downgrade() -> None:
    bind = op.get_bind()
    bind.execute(sa.update(_TASK).where(_TASK.c.state == "open", _TASK.c.assigned_group.like("ceo:%"))
                 .values(assigned_group="ceo"))
    bind.execute(sa.update(_TASK).where(_TASK.c.state == "open", sa.or_(
        _TASK.c.assigned_group == "appointment", _TASK.c.assigned_group.like("appointment:%")))
                 .values(assigned_group="hr"))
