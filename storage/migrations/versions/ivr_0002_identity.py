"""ivr: who an identified caller is, while the call lives, for a daemon adopting the call

Revision ID: ivr_0002
Revises: ivr_0001
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa

revision = "ivr_0002"
down_revision = "ivr_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ivr_identity",
        sa.Column("uniqueid", sa.String(64), nullable=False),
        sa.Column("call_id", sa.Integer, nullable=False),
        sa.Column("center", sa.String(32), nullable=False),
        sa.Column("account_no", sa.String(32), nullable=False),
        sa.Column("identified_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("uniqueid", name="pk_ivr_identity"),
    )
    op.create_index("ix_ivr_identity_expires_at", "ivr_identity", ["expires_at"])


def downgrade() -> None:
    op.drop_table("ivr_identity")
