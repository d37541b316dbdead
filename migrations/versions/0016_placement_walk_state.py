"""The placement register kept incrementally (issue 21): each placement keeps its projection's state, and a read
finds the steps pending past their due time by an index

Revision ID: 0016_placement_walk_state
Revises: 0015_decision_table_drafts
Create Date: 2026-12-04 10:00:00

Existing placements have no state (NULL): the first step of each, or `ntpswf register rebuild`, rebuilds it from
its history and keeps the state from then on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_placement_walk_state"
down_revision = "0015_decision_table_drafts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("placement") as batch:
        batch.add_column(sa.Column("walk_state", sa.JSON(), nullable=True))
    op.create_index("ix_placement_report_outcome_due", "placement_report", ["outcome", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_placement_report_outcome_due", table_name="placement_report")
    with op.batch_alter_table("placement") as batch:
        batch.drop_column("walk_state")
