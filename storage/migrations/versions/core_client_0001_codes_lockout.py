"""core_client: password lockouts, verification codes, per-mobile code senders

Revision ID: core_client_0001
Revises:
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa

revision = "core_client_0001"
down_revision = None
branch_labels = ("core_client",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "core_lockout",
        sa.Column("center", sa.String(32), nullable=False),
        sa.Column("account_no", sa.String(32), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("locked_until", sa.Float, nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("center", "account_no", name="pk_core_lockout"),
    )
    op.create_table(
        "core_code",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("center", sa.String(32), nullable=False),
        sa.Column("account_no", sa.String(32), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("mobile_digest", sa.String(64), nullable=False),
        sa.Column("salt", sa.LargeBinary(16), nullable=False),
        sa.Column("code_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("used_at", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_core_code"),
    )
    op.create_index("ix_core_code_account", "core_code",
                    ["center", "account_no", "purpose", "created_at"])
    op.create_index("ix_core_code_mobile", "core_code", ["mobile_digest", "created_at"])
    op.create_table(
        "core_code_sender",
        sa.Column("mobile_digest", sa.String(64), nullable=False),
        sa.Column("last_sent_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("mobile_digest", name="pk_core_code_sender"),
    )


def downgrade() -> None:
    op.drop_table("core_code_sender")
    op.drop_index("ix_core_code_mobile", table_name="core_code")
    op.drop_index("ix_core_code_account", table_name="core_code")
    op.drop_table("core_code")
    op.drop_table("core_lockout")
