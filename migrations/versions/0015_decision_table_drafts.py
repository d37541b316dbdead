"""Decision tables edited in the studio: one draft per process and DMN file (issue 20)

Revision ID: 0015_decision_table_drafts
Revises: 0014_passed_elements
Create Date: 2026-12-04 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_decision_table_drafts"
down_revision = "0014_passed_elements"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decision_table_draft",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("process_key", sa.String(length=200), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("xml", sa.Text(), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("process_key", "filename"),
    )


def downgrade() -> None:
    op.drop_table("decision_table_draft")
