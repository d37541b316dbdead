"""A task's own data when it opened (its branch's view of the case), and one head again

Revision ID: 0007_task_context
Revises: 0003_api_hr, 0005_register, 0006_studio
Create Date: 2026-11-22 20:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_task_context"
down_revision = ("0003_api_hr", "0005_register", "0006_studio")
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("human_task") as batch_op:
        batch_op.add_column(sa.Column("context", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("human_task") as batch_op:
        batch_op.drop_column("context")
