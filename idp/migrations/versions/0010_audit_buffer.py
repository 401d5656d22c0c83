"""Audit events carry the id made where they happened, unique: the audit buffer's drainer writes
a batch again after a crash without storing an event twice

Revision ID: 0010_audit_buffer
Revises: 0009_protocol2
"""
from alembic import op
import sqlalchemy as sa


revision = "0010_audit_buffer"
down_revision = "0009_protocol2"
branch_labels = None
depends_on = None


def upgrade():
    # nullable: events recorded before this revision have no id (a unique column holds any
    # number of NULLs, on PostgreSQL and SQLite alike)
    with op.batch_alter_table('audit_events') as batch_op:
        batch_op.add_column(sa.Column('event_id', sa.String(length=36), nullable=True))
        batch_op.create_unique_constraint('uq_audit_events_event_id', ['event_id'])


def downgrade():
    with op.batch_alter_table('audit_events') as batch_op:
        batch_op.drop_constraint('uq_audit_events_event_id', type_='unique')
        batch_op.drop_column('event_id')
