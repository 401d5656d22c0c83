"""DPoP (RFC 9449): a relying system that must bind its tokens; the key a code and a token are bound to

Revision ID: 0012_dpop
Revises: 0011_rfc9068
"""
from alembic import op
import sqlalchemy as sa


revision = '0012_dpop'
down_revision = '0011_rfc9068'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('oauth_clients') as batch_op:
        batch_op.add_column(sa.Column('dpop_bound_access_tokens', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    with op.batch_alter_table('oauth_codes') as batch_op:
        batch_op.add_column(sa.Column('dpop_jkt', sa.String(length=64), nullable=True))
    with op.batch_alter_table('oauth_tokens') as batch_op:
        batch_op.add_column(sa.Column('dpop_jkt', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('oauth_tokens') as batch_op:
        batch_op.drop_column('dpop_jkt')
    with op.batch_alter_table('oauth_codes') as batch_op:
        batch_op.drop_column('dpop_jkt')
    with op.batch_alter_table('oauth_clients') as batch_op:
        batch_op.drop_column('dpop_bound_access_tokens')
