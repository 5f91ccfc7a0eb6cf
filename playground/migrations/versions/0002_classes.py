"""classes and lessons

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('classes',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('code', sa.String(length=12), nullable=False),
    sa.Column('teacher_token_hash', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('lesson', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.Column('ended_at', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_classes')),
    sa.UniqueConstraint('code', name=op.f('uq_classes_code'))
    )
    op.create_table('class_members',
    sa.Column('class_id', sa.String(length=32), nullable=False),
    sa.Column('workspace_id', sa.String(length=32), nullable=False),
    sa.Column('display_name', sa.String(length=40), nullable=False),
    sa.Column('name_key', sa.String(length=40), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('joined_at', sa.Float(), nullable=False),
    sa.Column('left_at', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['class_id'], ['classes.id'], name=op.f('fk_class_members_class_id_classes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_class_members_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('class_id', 'workspace_id', name=op.f('pk_class_members')),
    sa.UniqueConstraint('class_id', 'name_key', name='uq_class_members_name')
    )
    # Plain ADD COLUMN (no batch copy of "runs": on SQLite that drops and
    # recreates the table, and dropping it with foreign keys on would cascade).
    op.add_column('runs', sa.Column('class_id', sa.String(length=32), nullable=True))
    op.add_column('runs', sa.Column('lesson_step', sa.Integer(), nullable=True))
    op.create_index(op.f('ix_runs_class_id'), 'runs', ['class_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_runs_class_id'), table_name='runs')
    op.drop_column('runs', 'lesson_step')
    op.drop_column('runs', 'class_id')

    op.drop_table('class_members')
    op.drop_table('classes')
