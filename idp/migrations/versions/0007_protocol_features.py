"""protocol features of the certified providers: pairwise subjects, pushed authorization requests

Revision ID: 0007_protocol_features
Revises: 0006_client_contacts
"""
from alembic import op
import sqlalchemy as sa


revision = '0007_protocol_features'
down_revision = '0006_client_contacts'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('oauth_clients') as batch_op:
        batch_op.add_column(sa.Column('subject_type', sa.String(length=16), nullable=False, server_default='public'))
        batch_op.add_column(sa.Column('sector_identifier', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('require_pushed_authorization_requests', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade():
    with op.batch_alter_table('oauth_clients') as batch_op:
        batch_op.drop_column('require_pushed_authorization_requests')
        batch_op.drop_column('sector_identifier')
        batch_op.drop_column('subject_type')
