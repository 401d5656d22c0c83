"""单位用户: the unit (name, public code, type, legal representative) and its handler's document

Revision ID: 0008_unit_accounts
Revises: 0007_protocol_features
"""
from alembic import op
import sqlalchemy as sa


revision = '0008_unit_accounts'
down_revision = '0007_protocol_features'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users') as batch_op:
        batch_op.add_column(sa.Column('unit_name', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('unit_id_type', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('uscc', sa.String(length=18), nullable=True))
        batch_op.add_column(sa.Column('unit_type', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('legal_rep_name', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('handler_id_type', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('handler_id_number_enc', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('handler_id_number_hash', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint('uq_users_uscc', ['uscc'])
        batch_op.create_index('ix_users_handler_id_number_hash', ['handler_id_number_hash'])
    with op.batch_alter_table('oauth_clients') as batch_op:
        # 允许登录的用户类型: personal, unit or both; every existing system stays persons-only
        batch_op.add_column(sa.Column('allowed_user_types', sa.String(length=16), nullable=False,
                                      server_default='personal'))


def downgrade():
    with op.batch_alter_table('oauth_clients') as batch_op:
        batch_op.drop_column('allowed_user_types')
    with op.batch_alter_table('users') as batch_op:
        batch_op.drop_index('ix_users_handler_id_number_hash')
        batch_op.drop_constraint('uq_users_uscc', type_='unique')
        for column in ('handler_id_number_hash', 'handler_id_number_enc', 'handler_id_type', 'legal_rep_name',
                       'unit_type', 'uscc', 'unit_id_type', 'unit_name'):
            batch_op.drop_column(column)
