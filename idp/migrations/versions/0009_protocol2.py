"""front-channel logout and a relying system's minimum authentication level

Revision ID: 0009_protocol2
Revises: 0008_unit_accounts
"""
from alembic import op
import sqlalchemy as sa


revision = '0009_protocol2'
down_revision = '0008_unit_accounts'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('oauth_clients') as batch_op:
        batch_op.add_column(sa.Column('frontchannel_logout_uri', sa.String(length=512), nullable=True))
        batch_op.add_column(sa.Column('frontchannel_logout_session_required', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('min_acr', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('oauth_clients') as batch_op:
        batch_op.drop_column('min_acr')
        batch_op.drop_column('frontchannel_logout_session_required')
        batch_op.drop_column('frontchannel_logout_uri')
