"""a relying system's contacts (where its users turn when registration still fails)

Revision ID: 0006_client_contacts
Revises: 0005_privacy
"""
from alembic import op
import sqlalchemy as sa


revision = '0006_client_contacts'
down_revision = '0005_privacy'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('oauth_clients') as batch_op:
        batch_op.add_column(sa.Column('contacts', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('oauth_clients') as batch_op:
        batch_op.drop_column('contacts')
