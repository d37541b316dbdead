"""API token rate limit hits and HR bulk jobs

Revision ID: 0003_api_hr
Revises: 0001
Create Date: 2026-11-23 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_api_hr"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_hit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rate_limit_hit") as batch_op:
        batch_op.create_index("ix_rate_limit_bucket_at", ["bucket", "at"], unique=False)
        batch_op.create_index("ix_rate_limit_at", ["at"], unique=False)
    op.create_table(
        "bulk_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("started_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("bulk_job") as batch_op:
        batch_op.create_index("ix_bulk_job_kind_status", ["kind", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bulk_job") as batch_op:
        batch_op.drop_index("ix_bulk_job_kind_status")
    op.drop_table("bulk_job")
    with op.batch_alter_table("rate_limit_hit") as batch_op:
        batch_op.drop_index("ix_rate_limit_at")
        batch_op.drop_index("ix_rate_limit_bucket_at")
    op.drop_table("rate_limit_hit")
