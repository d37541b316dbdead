"""A task's reminder: when its assignee is told it falls due (the `remindBefore` property before `dueAt`)

Revision ID: 0009_task_reminder
Revises: 0008_inbox_order
Create Date: 2026-12-03 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_task_reminder"
down_revision = "0008_inbox_order"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("human_task") as batch_op:
        batch_op.add_column(sa.Column("remind_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_task_remind_at", ["remind_at"])


def downgrade() -> None:
    with op.batch_alter_table("human_task") as batch_op:
        batch_op.drop_index("ix_task_remind_at")
        batch_op.drop_column("remind_at")
