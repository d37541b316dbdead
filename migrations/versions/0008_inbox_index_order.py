"""Inbox indexes end with the task id, so an inbox page is read in order from the index

A person's or a group's open tasks are listed oldest first (by id) and keyset-paged. With (assignee_id, state)
alone, PostgreSQL chose to walk the primary key and filter, reading every task newer than the page: 4,000 rows for
a page of 20 with 10,000 open tasks. (assignee_id, state, id) answers the page with 21 index entries.

Revision ID: 0008_inbox_order
Revises: 0007_task_context
Create Date: 2026-11-23 04:10:00
"""

from __future__ import annotations

from alembic import op

revision = "0008_inbox_order"
down_revision = "0007_task_context"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_task_assignee_state_id", "human_task", ["assignee_id", "state", "id"])
    op.create_index("ix_task_group_state_id", "human_task", ["assigned_group", "state", "id"])
    op.drop_index("ix_task_assignee_state", table_name="human_task")
    op.drop_index("ix_task_group_state", table_name="human_task")


def downgrade() -> None:
    op.create_index("ix_task_assignee_state", "human_task", ["assignee_id", "state"])
    op.create_index("ix_task_group_state", "human_task", ["assigned_group", "state"])
    op.drop_index("ix_task_assignee_state_id", table_name="human_task")
    op.drop_index("ix_task_group_state_id", table_name="human_task")
