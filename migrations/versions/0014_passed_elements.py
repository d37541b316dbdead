"""The elements a case passed, kept when compaction takes finished tasks out of its live state (issue 21)

Revision ID: 0014_passed_elements
Revises: 0013_work_groups
Create Date: 2026-12-04 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_passed_elements"
down_revision = "0013_work_groups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "passed_element",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("instance_id", sa.Integer(), sa.ForeignKey("process_instance.id"), nullable=False),
        sa.Column("element", sa.String(200), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("changed_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_passed_element_instance", "passed_element", ["instance_id"])


def downgrade() -> None:
    op.drop_index("ix_passed_element_instance", table_name="passed_element")
    op.drop_table("passed_element")
