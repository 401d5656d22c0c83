"""a relying system's own access tokens issued before a time are revoked (client_credentials
tokens have no row to mark)

Revision ID: 0011_rfc9068
Revises: 0010_audit_buffer
"""
from alembic import op
import sqlalchemy as sa


revision = '0011_rfc9068'
down_revision = '0010_audit_buffer'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('oauth_clients') as batch_op:
        batch_op.add_column(sa.Column('tokens_revoked_before', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('oauth_clients') as batch_op:
        batch_op.drop_column('tokens_revoked_before')
