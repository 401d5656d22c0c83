"""index the revoked, unexpired access tokens; keep the login's acr with each token

The Redis deny-list of revoked access tokens is a cache; after Redis lost its data it is reloaded
from ``oauth_tokens`` (revoked_at set, access_expires_at in the future).  A partial index keeps
that reload a read of the few revoked rows instead of a scan of every token ever issued.

Revision ID: 0003_revocations
Revises: 0002_account
Create Date: 2026-12-01 10:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0003_revocations'
down_revision = '0002_account'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('oauth_tokens', schema=None) as batch_op:
        # the login's acr, kept with the token so an ID token issued at refresh can repeat it
        batch_op.add_column(sa.Column('acr', sa.String(length=64), nullable=True))
        batch_op.create_index(
            'ix_oauth_tokens_revoked_access', ['access_expires_at'], unique=False,
            postgresql_where=sa.text('revoked_at IS NOT NULL'),
            sqlite_where=sa.text('revoked_at IS NOT NULL'),
        )


def downgrade():
    with op.batch_alter_table('oauth_tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_oauth_tokens_revoked_access')
        batch_op.drop_column('acr')
