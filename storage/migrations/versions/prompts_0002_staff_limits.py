"""prompts: staff lockouts move to security_limit (core_client), counted per number and caller

Revision ID: prompts_0002
Revises: prompts_0001
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa

revision = "prompts_0002"
down_revision = "prompts_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("prompt_staff") as batch:
        batch.drop_column("failures")
        batch.drop_column("locked_until")


def downgrade() -> None:
    with op.batch_alter_table("prompt_staff") as batch:
        batch.add_column(sa.Column("failures", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("locked_until", sa.Float, nullable=False,
                                   server_default="0"))
