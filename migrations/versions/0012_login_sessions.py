"""Web login sessions kept on the server, so that logout, a password change and "sign out everywhere" end them

Revision ID: 0012_login_sessions
Revises: 0011_ceo_groups
Create Date: 2026-12-04 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_login_sessions"
down_revision = "0011_ceo_groups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_session",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("app_user.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(40), nullable=True),
        sa.Column("client", sa.String(64), nullable=True),
    )
    op.create_index("ix_login_session_user", "login_session", ["user_id", "ended_at"])


def downgrade() -> None:
    op.drop_index("ix_login_session_user", table_name="login_session")
    op.drop_table("login_session")
