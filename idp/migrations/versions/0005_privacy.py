"""privacy: recorded consents, closed accounts

A closed account (注销) keeps its row for the audit trail, reduced to its pseudonymous ``sub``:
the username, its key, the password hash and the name become NULL (the username free for a new
registration), and ``closed_at`` says when.  ``privacy_consents`` records separate consents with
the version of the privacy notice they were given under.

Revision ID: 0005_privacy
Revises: 0004_second_factors
Create Date: 2026-12-01 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005_privacy'
down_revision = '0004_second_factors'
branch_labels = None
depends_on = None

_RELEASED = ("username", "username_key", "password_hash", "name")
_LENGTHS = {"username": 32, "username_key": 32, "password_hash": 255, "name": 100}


def upgrade():
    op.create_table('privacy_consents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('flow_ref', sa.String(length=64), nullable=True),
    sa.Column('purpose', sa.String(length=64), nullable=False),
    sa.Column('notice_version', sa.String(length=32), nullable=False),
    sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_privacy_consents_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_consents'))
    )
    with op.batch_alter_table('privacy_consents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_privacy_consents_flow_ref'), ['flow_ref'], unique=False)
        batch_op.create_index('ix_privacy_consents_user_purpose', ['user_id', 'purpose'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True))
        for column in _RELEASED:
            batch_op.alter_column(column, existing_type=sa.String(length=_LENGTHS[column]), nullable=True)


def downgrade():
    # closed accounts hold no username or name: placeholders that no login or registration can
    # match (not a valid username, no usable password hash) let them back under NOT NULL
    op.execute(sa.text(
        "UPDATE users SET username = 'closed-' || id, username_key = 'closed-' || id, "
        "password_hash = '!', name = '' WHERE status = 'closed'"
    ))
    with op.batch_alter_table('users', schema=None) as batch_op:
        for column in _RELEASED:
            batch_op.alter_column(column, existing_type=sa.String(length=_LENGTHS[column]), nullable=False)
        batch_op.drop_column('closed_at')

    with op.batch_alter_table('privacy_consents', schema=None) as batch_op:
        batch_op.drop_index('ix_privacy_consents_user_purpose')
        batch_op.drop_index(batch_op.f('ix_privacy_consents_flow_ref'))

    op.drop_table('privacy_consents')
