"""Work groups an administrator keeps: a lane may name one (issue 18)

Revision ID: 0013_work_groups
Revises: 0012_login_sessions
Create Date: 2026-12-04 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_work_groups"
down_revision = "0012_login_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "work_group",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("organisation_id", sa.Integer(), sa.ForeignKey("organisation.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(80), nullable=False),
    )
    op.create_table(
        "work_group_member",
        sa.Column("group_id", sa.Integer(), sa.ForeignKey("work_group.id"), primary_key=True),
        sa.Column("person_id", sa.Integer(), sa.ForeignKey("person.id"), primary_key=True),
    )
    op.create_index("ix_work_group_member_person", "work_group_member", ["person_id"])


def downgrade() -> None:
    op.drop_index("ix_work_group_member_person", table_name="work_group_member")
    op.drop_table("work_group_member")
    op.drop_table("work_group")
