"""a relying system's own access tokens issued before a time are revoked (client_credentials
tokens have no row to mark)

Revision ID: 0009_rfc9068
Revises: 0008_unit_accounts
"""
from alembic import op
import sqlalchemy as sa


revision = '0009_rfc9068'
down_revision = '0008_unit_accounts'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('oauth_clients') as batch_op:
        batch_op.add_column(sa.Column('tokens_revoked_before', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('oauth_clients') as batch_op:
        batch_op.drop_column('tokens_revoked_before')
