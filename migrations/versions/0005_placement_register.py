"""OCPE's placement register: placements, agreement versions, reports, concerns, self-identification

Revision ID: 0005_register
Revises: 0001
Create Date: 2026-11-23 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005_register'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('placement',
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('route', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=True),
    sa.Column('opportunity', sa.JSON(), nullable=True),
    sa.Column('closing_date', sa.Date(), nullable=True),
    sa.Column('secondee', sa.String(length=80), nullable=True),
    sa.Column('secondee_name', sa.String(length=200), nullable=True),
    sa.Column('home_organisation', sa.String(length=200), nullable=True),
    sa.Column('host_organisation', sa.String(length=200), nullable=True),
    sa.Column('home_contact', sa.String(length=80), nullable=True),
    sa.Column('host_contact', sa.String(length=80), nullable=True),
    sa.Column('proposed_on', sa.Date(), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=True),
    sa.Column('end_date', sa.Date(), nullable=True),
    sa.Column('actual_end_date', sa.Date(), nullable=True),
    sa.Column('agreed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('accepted_version', sa.Integer(), nullable=False),
    sa.Column('extensions', sa.Integer(), nullable=False),
    sa.Column('ended_early', sa.Boolean(), nullable=False),
    sa.Column('objectives_total', sa.Integer(), nullable=False),
    sa.Column('objectives_met', sa.Integer(), nullable=True),
    sa.Column('objectives_partly_met', sa.Integer(), nullable=True),
    sa.Column('reports_due', sa.Integer(), nullable=False),
    sa.Column('reports_on_time', sa.Integer(), nullable=False),
    sa.Column('reports_late', sa.Integer(), nullable=False),
    sa.Column('reports_missed', sa.Integer(), nullable=False),
    sa.Column('concerns_raised', sa.Integer(), nullable=False),
    sa.Column('concerns_open', sa.Integer(), nullable=False),
    sa.Column('evaluation_value', sa.String(length=20), nullable=True),
    sa.Column('synced_event_id', sa.Integer(), nullable=False),
    sa.Column('synced_event_count', sa.Integer(), nullable=False),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'], ),
    sa.PrimaryKeyConstraint('instance_id')
    )
    with op.batch_alter_table('placement', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_placement_status'), ['status'], unique=False)

    op.create_table('placement_self_identification',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('gender', sa.String(length=30), nullable=True),
    sa.Column('age_band', sa.String(length=30), nullable=True),
    sa.Column('atsi', sa.String(length=30), nullable=True),
    sa.Column('disability', sa.String(length=30), nullable=True),
    sa.Column('cald', sa.String(length=30), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('instance_id')
    )
    op.create_table('placement_agreement_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('secondee_answer', sa.String(length=20), nullable=True),
    sa.Column('secondee_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('home_answer', sa.String(length=20), nullable=True),
    sa.Column('home_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('host_answer', sa.String(length=20), nullable=True),
    sa.Column('host_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('changes', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['placement.instance_id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('instance_id', 'version')
    )
    with op.batch_alter_table('placement_agreement_version', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_placement_agreement_version_instance_id'), ['instance_id'], unique=False)

    op.create_table('placement_concern',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('raised_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('raised_by', sa.String(length=80), nullable=False),
    sa.Column('party', sa.String(length=30), nullable=False),
    sa.Column('category', sa.String(length=30), nullable=False),
    sa.Column('urgent', sa.Boolean(), nullable=False),
    sa.Column('details', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['placement.instance_id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('instance_id', 'seq')
    )
    with op.batch_alter_table('placement_concern', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_placement_concern_instance_id'), ['instance_id'], unique=False)

    op.create_table('placement_report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('filed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('filed_by', sa.String(length=80), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['placement.instance_id'], ),
    sa.ForeignKeyConstraint(['task_id'], ['human_task.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('task_id')
    )
    with op.batch_alter_table('placement_report', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_placement_report_instance_id'), ['instance_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('placement_report', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_placement_report_instance_id'))

    op.drop_table('placement_report')
    with op.batch_alter_table('placement_concern', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_placement_concern_instance_id'))

    op.drop_table('placement_concern')
    with op.batch_alter_table('placement_agreement_version', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_placement_agreement_version_instance_id'))

    op.drop_table('placement_agreement_version')
    op.drop_table('placement_self_identification')
    with op.batch_alter_table('placement', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_placement_status'))

    op.drop_table('placement')
